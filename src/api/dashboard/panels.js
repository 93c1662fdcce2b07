// The overview's breakdown panels: each a card with tabs, the top rows of
// one dimension by visitors, rows that filter the view when clicked, and
// the full list (search, pages, CSV) behind "Details".

import { query } from './api.js'

/** Panels and their tabs: [label, dimension, options]. */
export const PANELS = [
  {
    title: 'Sources',
    tabs: [
      ['Channels', 'visit:channel'],
      ['Sources', 'visit:source'],
      ['Referrers', 'visit:referrer_domain'],
      ['UTM medium', 'visit:utm_medium'],
      ['UTM source', 'visit:utm_source'],
      ['UTM campaign', 'visit:utm_campaign'],
      ['UTM term', 'visit:utm_term'],
      ['UTM content', 'visit:utm_content']
    ]
  },
  {
    title: 'Pages',
    tabs: [
      ['Top pages', 'event:page', { pageViews: true }],
      ['Entry pages', 'visit:entry_page', { sessions: true }],
      ['Exit pages', 'visit:exit_page', { sessions: true }]
    ]
  },
  {
    title: 'Locations',
    tabs: [
      ['Countries', 'visit:country'],
      ['Regions', 'visit:region'],
      ['Cities', 'visit:city']
    ]
  },
  {
    title: 'Devices',
    tabs: [
      ['Browsers', 'visit:browser'],
      ['Operating systems', 'visit:os'],
      ['Devices', 'visit:device']
    ]
  },
  {
    title: 'Goals',
    tabs: [
      ['Custom events', 'event:name', { goals: true }]
    ]
  }
]

const SHOWN = 10
const PAGE = 100

/** The query of one tab, for a page of rows. */
function tabQuery (tab, context, { limit, offset, search }) {
  const [, dimension, options = {}] = tab
  const filters = [...context.filters]
  if (options.pageViews) filters.push(['is', 'event:type', ['page']])
  if (options.goals) filters.push(['is', 'event:type', ['track']])
  if (search && !options.sessions) filters.push(['contains', dimension, [search]])
  const metrics = options.sessions
    ? ['visitors', 'visits']
    : options.properties
      ? ['visitors', 'events']
      : options.goals
      ? ['visitors', 'events', 'conversion_rate']
      : options.pageViews ? ['visitors', 'pageviews'] : ['visitors']
  return {
    metrics,
    date_range: context.range,
    dimensions: [dimension],
    filters,
    order_by: [['visitors', 'desc']],
    include: { total_rows: true },
    pagination: { limit, offset }
  }
}

const METRIC_NAMES = { visitors: 'Visitors', visits: 'Visits', pageviews: 'Pageviews', events: 'Events', conversion_rate: 'CR' }

function formatNumber (value, metric) {
  if (value === null || value === undefined) return '–'
  if (metric === 'conversion_rate') return `${value}%`
  return new Intl.NumberFormat().format(value)
}

/** The rows of an answer as a list, bars scaled to the first metric. */
function rowList (answer, body, tab, context) {
  const list = document.createElement('ol')
  list.className = 'rows'
  const top = Math.max(1, ...answer.results.map(r => r.metrics[0] || 0))
  const [, dimension, options = {}] = tab
  const filterable = !options.sessions
  for (const row of answer.results) {
    const item = document.createElement('li')
    const bar = document.createElement('span')
    bar.className = 'bar'
    bar.style.width = `${Math.max(1, (100 * (row.metrics[0] || 0)) / top)}%`
    const label = row.dimensions[0]
    const name = document.createElement(filterable && label !== null ? 'button' : 'span')
    name.className = 'name'
    name.textContent = label === null ? '(none)' : label
    if (filterable && label !== null) {
      name.type = 'button'
      name.title = `Filter by ${dimension} = ${label}`
      name.addEventListener('click', () => context.addFilter(['is', dimension, [label]]))
    }
    item.append(bar, name)
    body.metrics.forEach((metric, i) => {
      const value = document.createElement('span')
      value.className = 'value'
      value.textContent = formatNumber(row.metrics[i], metric)
      item.appendChild(value)
    })
    list.appendChild(item)
  }
  if (!answer.results.length) {
    const empty = document.createElement('li')
    empty.className = 'empty'
    empty.textContent = 'No data for this period'
    list.appendChild(empty)
  }
  return list
}

function header (body) {
  const head = document.createElement('div')
  head.className = 'rows-head'
  const name = document.createElement('span')
  name.className = 'name'
  name.textContent = 'Name'
  head.appendChild(name)
  for (const metric of body.metrics) {
    const label = document.createElement('span')
    label.className = 'value'
    label.textContent = METRIC_NAMES[metric] || metric
    head.appendChild(label)
  }
  return head
}

/** Where a panel says what failed and why. */
export function errorNote (error) {
  const note = document.createElement('p')
  note.className = 'error'
  note.setAttribute('role', 'alert')
  note.textContent = `Could not load: ${error.message}${error.field ? ` (${error.field})` : ''}`
  return note
}

function csv (answer, body, dimension) {
  const quote = (value) => `"${String(value ?? '').replaceAll('"', '""')}"`
  const lines = [[dimension, ...body.metrics].map(quote).join(',')]
  for (const row of answer.results) lines.push([row.dimensions[0], ...row.metrics].map(quote).join(','))
  return new Blob([lines.join('\n') + '\n'], { type: 'text/csv' })
}

/** The full list of a tab in a dialog: search, pages of rows, CSV. */
function details (tab, context) {
  const dialog = document.createElement('dialog')
  dialog.className = 'details'
  dialog.setAttribute('aria-label', tab[0])
  const heading = document.createElement('h2')
  heading.textContent = tab[0]
  const search = document.createElement('input')
  search.type = 'search'
  search.placeholder = 'Search'
  search.setAttribute('aria-label', `Search ${tab[0]}`)
  const content = document.createElement('div')
  const pager = document.createElement('div')
  pager.className = 'pager'
  const previous = document.createElement('button')
  previous.type = 'button'
  previous.textContent = 'Previous'
  const next = document.createElement('button')
  next.type = 'button'
  next.textContent = 'Next'
  const download = document.createElement('button')
  download.type = 'button'
  download.textContent = 'Export CSV'
  const close = document.createElement('button')
  close.type = 'button'
  close.textContent = 'Close'
  pager.append(previous, next, download, close)
  dialog.append(heading, search, content, pager)
  let offset = 0
  let last = null
  const load = async () => {
    const body = tabQuery(tab, context, { limit: PAGE, offset, search: search.value.trim() })
    content.replaceChildren(document.createTextNode('Loading…'))
    try {
      const answer = await query(body)
      last = { answer, body }
      content.replaceChildren(header(body), rowList(answer, body, tab, {
        ...context,
        addFilter: (filter) => { dialog.close(); context.addFilter(filter) }
      }))
      previous.disabled = offset === 0
      next.disabled = !answer.meta.has_more
    } catch (error) {
      content.replaceChildren(errorNote(error))
    }
  }
  let timer = null
  search.addEventListener('input', () => {
    clearTimeout(timer)
    timer = setTimeout(() => { offset = 0; load() }, 250)
  })
  previous.addEventListener('click', () => { offset = Math.max(0, offset - PAGE); load() })
  next.addEventListener('click', () => { offset += PAGE; load() })
  download.addEventListener('click', () => {
    if (!last) return
    const link = document.createElement('a')
    link.href = URL.createObjectURL(csv(last.answer, last.body, tab[1]))
    link.download = `${tab[1].replace(/[^a-z0-9]+/gi, '_')}.csv`
    link.click()
    setTimeout(() => URL.revokeObjectURL(link.href), 1000)
  })
  close.addEventListener('click', () => dialog.close())
  dialog.addEventListener('close', () => dialog.remove())
  document.body.appendChild(dialog)
  dialog.showModal()
  load()
}

/** One panel card; loads its selected tab. */
export function panel (definition, context) {
  const card = document.createElement('section')
  card.className = 'card panel'
  const heading = document.createElement('h2')
  heading.textContent = definition.title
  const tabs = document.createElement('div')
  tabs.className = 'tabs'
  tabs.setAttribute('role', 'tablist')
  const body = document.createElement('div')
  body.className = 'panel-body'
  body.setAttribute('role', 'tabpanel')
  const more = document.createElement('button')
  more.type = 'button'
  more.className = 'link more'
  more.textContent = 'Details'
  let selected = 0
  const load = async () => {
    const tab = definition.tabs[selected]
    const request = tabQuery(tab, context, { limit: SHOWN, offset: 0 })
    body.replaceChildren(document.createTextNode('Loading…'))
    try {
      const answer = await query(request)
      body.replaceChildren(header(request), rowList(answer, request, tab, context))
    } catch (error) {
      body.replaceChildren(errorNote(error))
    }
  }
  definition.tabs.forEach((tab, i) => {
    const button = document.createElement('button')
    button.type = 'button'
    button.setAttribute('role', 'tab')
    button.textContent = tab[0]
    button.setAttribute('aria-selected', String(i === selected))
    button.addEventListener('click', () => {
      selected = i
      for (const other of tabs.children) other.setAttribute('aria-selected', String(other === button))
      load()
    })
    tabs.appendChild(button)
  })
  more.addEventListener('click', () => details(definition.tabs[selected], context))
  card.append(heading, tabs, body, more)
  // Settles when the first tab is drawn (or its error shown).
  card.loaded = load()
  return card
}
