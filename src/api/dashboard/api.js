// Calls to the public API with the read key the user signed in with. The
// key lives in sessionStorage only: never in the URL, gone with the tab.

const KEY = 'analytics.read_key'

/** The read key, or the share token of a shared link (`?share=`). */
export function readKey () {
  return new URLSearchParams(location.search).get('share') || sessionStorage.getItem(KEY)
}

export function signIn (key) {
  sessionStorage.setItem(KEY, key)
}

export function signOut () {
  sessionStorage.removeItem(KEY)
}

/** A refusal or failure of the API, with what it said. */
export class ApiError extends Error {
  constructor (status, body) {
    const detail = body && body.error
    super(detail ? detail.message : `the service answered ${status}`)
    this.status = status
    this.field = detail ? detail.field : undefined
    this.code = detail ? detail.code : undefined
  }
}

async function call (path, options = {}) {
  const headers = { Accept: 'application/json' }
  const key = readKey()
  if (key) headers.Authorization = `Bearer ${key}`
  if (options.body !== undefined) headers['Content-Type'] = 'application/json'
  let response
  try {
    // Relative: the dashboard works under a reverse proxy's sub-path.
    response = await fetch(path, {
      method: options.method || 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal
    })
  } catch (error) {
    if (error.name === 'AbortError') throw error
    throw new ApiError(0, { error: { message: 'the service cannot be reached' } })
  }
  const text = await response.text()
  let body = null
  try {
    body = text ? JSON.parse(text) : null
  } catch {
    body = null
  }
  if (!response.ok) throw new ApiError(response.status, body)
  return body
}

/** The project of the read key. */
export const project = () => call('v1/project')

/** `POST /v1/query`. */
export const query = (body, signal) => call('v1/query', { method: 'POST', body, signal })

/** `GET /v1/events/names` over a range (`"all"` or `[from, to]`). */
export const eventNames = (range) =>
  call(`v1/events/names?date_range=${encodeURIComponent(Array.isArray(range) ? range.join(',') : range)}`)

/** One of the analyses: `v1/funnel`, `v1/retention`, ... */
export const analyse = (path, body) => call(path, { method: 'POST', body })

/** `GET /v1/properties` of one event name over a range. */
export const properties = (event, range) =>
  call(`v1/properties?event=${encodeURIComponent(event)}&date_range=${encodeURIComponent(Array.isArray(range) ? range.join(',') : range)}`)
