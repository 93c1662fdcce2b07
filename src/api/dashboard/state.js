// The dashboard's state lives in the URL, so that a copied link reopens
// the same view: period, comparison, filters, interval and metric.

export const PERIODS = [
  ['today', 'Today'],
  ['yesterday', 'Yesterday'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
  ['month', 'This month'],
  ['last_month', 'Last month'],
  ['year', 'This year'],
  ['12mo', 'Last 12 months'],
  ['all', 'All time'],
  ['custom', 'Custom range']
]

export const METRICS = [
  ['visitors', 'Unique visitors', 'count'],
  ['visits', 'Total visits', 'count'],
  ['pageviews', 'Total pageviews', 'count'],
  ['views_per_visit', 'Views per visit', 'decimal'],
  ['bounce_rate', 'Bounce rate', 'percent'],
  ['visit_duration', 'Visit duration', 'duration']
]

/** The dashboard's views. */
export const VIEWS = ['overview', 'realtime', 'funnels', 'retention', 'paths', 'sessions', 'stickiness', 'lifecycle']

/** Reads the state from the page's URL. */
export function readState () {
  const params = new URLSearchParams(location.search)
  let filters = []
  try {
    const parsed = JSON.parse(params.get('filters') || '[]')
    if (Array.isArray(parsed)) filters = parsed.filter(f => Array.isArray(f) && f.length === 3)
  } catch {
    filters = []
  }
  const period = PERIODS.some(([p]) => p === params.get('period')) ? params.get('period') : '30d'
  const metric = METRICS.some(([m]) => m === params.get('metric')) ? params.get('metric') : 'visitors'
  const compare = ['previous', 'year'].includes(params.get('compare')) ? params.get('compare') : 'off'
  return {
    view: VIEWS.includes(params.get('view')) ? params.get('view') : 'overview',
    period,
    from: params.get('from') || '',
    to: params.get('to') || '',
    compare,
    metric,
    interval: params.get('interval') || '',
    filters
  }
}

/** Writes the state into the URL (a new history entry unless `replace`). */
export function writeState (state, replace = false) {
  const params = new URLSearchParams()
  // A shared link's token stays in its URL.
  const share = new URLSearchParams(location.search).get('share')
  if (share) params.set('share', share)
  if (state.view !== 'overview') params.set('view', state.view)
  params.set('period', state.period)
  if (state.period === 'custom') {
    params.set('from', state.from)
    params.set('to', state.to)
  }
  if (state.compare !== 'off') params.set('compare', state.compare)
  if (state.metric !== 'visitors') params.set('metric', state.metric)
  if (state.interval) params.set('interval', state.interval)
  if (state.filters.length) params.set('filters', JSON.stringify(state.filters))
  const url = `${location.pathname}?${params}`
  if (replace) history.replaceState(null, '', url)
  else history.pushState(null, '', url)
}

// Calendar arithmetic on `YYYY-MM-DD` strings, in UTC so that no local
// timezone shifts a day.
const parse = (text) => new Date(`${text}T00:00:00Z`)
const format = (date) => date.toISOString().slice(0, 10)

export function addDays (text, days) {
  const date = parse(text)
  date.setUTCDate(date.getUTCDate() + days)
  return format(date)
}

function addMonths (text, months) {
  const date = parse(text)
  date.setUTCMonth(date.getUTCMonth() + months, 1)
  return format(date)
}

function daysBetween (from, to) {
  return Math.round((parse(to) - parse(from)) / 86400000)
}

/** Today's date in the project's timezone. */
export function today (timezone) {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit'
  }).formatToParts(new Date())
  const part = (type) => parts.find(p => p.type === type).value
  return `${part('year')}-${part('month')}-${part('day')}`
}

/**
 * The period's dates, inclusive, as the API takes them: `[from, to]`, or
 * `"all"`.
 */
export function periodRange (state, timezone) {
  const now = today(timezone)
  const monthStart = `${now.slice(0, 7)}-01`
  switch (state.period) {
    case 'today': return [now, now]
    case 'yesterday': return [addDays(now, -1), addDays(now, -1)]
    case '7d': return [addDays(now, -6), now]
    case 'month': return [monthStart, now]
    case 'last_month': {
      const start = addMonths(monthStart, -1)
      return [start, addDays(monthStart, -1)]
    }
    case 'year': return [`${now.slice(0, 4)}-01-01`, now]
    case '12mo': return [addDays(addMonths(monthStart, -11), 0), now]
    case 'all': return 'all'
    case 'custom':
      if (/^\d{4}-\d{2}-\d{2}$/.test(state.from) && /^\d{4}-\d{2}-\d{2}$/.test(state.to) && state.from <= state.to) {
        return [state.from, state.to]
      }
      return [addDays(now, -29), now]
    default: return [addDays(now, -29), now]
  }
}

/** What the API compares the range with (its `compare`), or `null`. */
export function comparisonMode (state, range) {
  if (state.compare === 'off' || range === 'all') return null
  return state.compare === 'year' ? 'year_over_year' : 'previous_period'
}

/** The range moved by one period length (previous and next arrows). */
export function shiftRange (range, direction) {
  const length = daysBetween(range[0], range[1]) + 1
  return [addDays(range[0], direction * length), addDays(range[1], direction * length)]
}

/** The intervals that suit a range, the first being the default. */
export function intervals (range) {
  if (range === 'all') return ['month', 'week', 'day']
  const days = daysBetween(range[0], range[1]) + 1
  if (days <= 2) return ['hour', 'day']
  if (days <= 92) return ['day', 'week', 'hour'].filter(i => i !== 'hour' || days <= 7)
  return ['month', 'week', 'day']
}

/** The page's query parameters (an analysis form's values among them). */
export function searchParams () {
  return new URLSearchParams(location.search)
}

/** Keeps `entries` in the URL, replacing the current history entry. */
export function remember (entries) {
  const search = searchParams()
  for (const [key, value] of Object.entries(entries)) search.set(key, value)
  history.replaceState(null, '', `${location.pathname}?${search}`)
}
