// Product analytics: a funnel (steps picked from the event names the API
// lists, window, order, bars with conversion, drop-off and the median time
// between steps) and retention (a cohort grid, shaded by share). Each form
// keeps its values in the URL like the overview's state.

import { analyse, eventNames } from './api.js'
import { flowChart } from './charts.js'
import { element } from './dom.js'
import { errorNote } from './panels.js'
import { remember, searchParams } from './state.js'

function seconds (value) {
  if (value === null || value === undefined) return '–'
  if (value < 60) return `${Math.round(value)}s`
  if (value < 3600) return `${Math.round(value / 60)}m`
  if (value < 86400) return `${(value / 3600).toFixed(1)}h`
  return `${(value / 86400).toFixed(1)}d`
}

const percent = (share) => `${(share * 100).toFixed(1)}%`

/** A select of the event names seen in the range. */
function eventSelect (names, value, label) {
  const select = element('select', { 'aria-label': label })
  for (const name of names) select.appendChild(element('option', { value: name, text: name }))
  if (value && !names.includes(value)) select.appendChild(element('option', { value, text: value }))
  select.value = value || names[0] || ''
  return select
}

/** The event names of the range, or `null` after showing why they failed. */
async function namesOrError (main, range, toolbar) {
  try {
    return (await eventNames(range)).items.map(item => item.name)
  } catch (error) {
    main.replaceChildren(toolbar, errorNote(error))
    return null
  }
}

/** The funnel's bars: persons per step, conversion and drop-off. */
function funnelChart (answer) {
  const list = element('ol', { class: 'funnel', 'aria-label': 'Funnel steps' })
  const first = answer.steps[0] ? answer.steps[0].users : 0
  answer.steps.forEach((step, i) => {
    const bar = element('span', { class: 'funnel-bar' })
    bar.style.width = `${first ? Math.max(1, (100 * step.users) / first) : 0}%`
    const dropped = i === 0 ? null : answer.steps[i - 1].users - step.users
    const facts = i === 0
      ? `${step.users} entered`
      : `${step.users} (${percent(step.conversion_from_first)} of all, ${percent(step.conversion_from_previous)} of the step before); ${dropped} dropped off; median ${seconds(step.median_seconds_from_previous)} after the step before`
    list.appendChild(element('li', {},
      element('span', { class: 'funnel-name', text: `${i + 1}. ${step.event}` }),
      element('span', { class: 'funnel-track' }, bar),
      element('span', { class: 'funnel-facts', text: facts })))
  })
  return list
}

/** The funnel view. */
export async function funnels (main, range, toolbar) {
  const search = searchParams()
  const result = element('div', { class: 'card' })
  const names = await namesOrError(main, range, toolbar)
  if (!names) return
  let stored = []
  try {
    stored = JSON.parse(search.get('steps') || '[]')
  } catch {
    stored = []
  }
  const initial = stored.length >= 2 ? stored : names.slice(0, 2)
  const steps = element('div', { class: 'steps' })
  const addStep = (value) => steps.appendChild(eventSelect(names, value, `Step ${steps.children.length + 1}`))
  initial.forEach(addStep)
  const within = element('select', { 'aria-label': 'Conversion window' },
    ...['30m', '1h', '1d', '7d', '14d', '30d'].map(w => element('option', { value: w, text: `within ${w}` })))
  within.value = search.get('window') || '14d'
  const order = element('select', { 'aria-label': 'Step order' },
    element('option', { value: 'ordered', text: 'in order' }),
    element('option', { value: 'strict', text: 'in strict order' }),
    element('option', { value: 'any', text: 'in any order' }))
  order.value = search.get('order') || 'ordered'
  const breakdown = element('select', { 'aria-label': 'Breakdown' },
    element('option', { value: '', text: 'no breakdown' }),
    ...[['visit:channel', 'by channel'], ['visit:source', 'by source'], ['visit:device', 'by device'],
      ['visit:browser', 'by browser'], ['visit:country', 'by country'], ['event:page', 'by first page']]
      .map(([value, text]) => element('option', { value, text })))
  breakdown.value = search.get('breakdown') || ''
  const more = element('button', { type: 'button', text: 'Add step' })
  more.addEventListener('click', () => addStep(names[0]))
  const run = element('button', { type: 'submit', text: 'Show funnel' })
  const form = element('form', { class: 'card analysis-form', 'aria-label': 'Funnel' },
    element('h2', { text: 'Funnel' }), steps, element('div', { class: 'controls' }, more, within, order, breakdown, run))
  const show = async () => {
    const picked = [...steps.children].map(select => select.value).filter(Boolean)
    remember({ steps: JSON.stringify(picked), window: within.value, order: order.value, breakdown: breakdown.value })
    result.replaceChildren(document.createTextNode('Loading…'))
    try {
      const answer = await analyse('v1/funnel', {
        steps: picked.map(event => ({ event })),
        window: within.value,
        order: order.value,
        date_range: range,
        ...(breakdown.value ? { breakdown: breakdown.value, breakdown_limit: 10 } : {})
      })
      const parts = [funnelChart(answer)]
      for (const group of answer.breakdown || []) {
        parts.push(element('h3', { class: 'breakdown-value', text: group.value === null ? '(none)' : group.value }), funnelChart(group))
      }
      result.replaceChildren(...parts)
    } catch (error) {
      result.replaceChildren(errorNote(error))
    }
  }
  form.addEventListener('submit', (event) => { event.preventDefault(); show() })
  main.replaceChildren(toolbar, form, result)
  if (names.length >= 2 || stored.length >= 2) show()
  else result.replaceChildren(element('p', { class: 'muted', text: 'A funnel needs two event names in the period.' }))
}

/** The cohort grid, each cell shaded by its share. */
function cohortGrid (answer, period) {
  const table = element('table', { class: 'cohorts' })
  const periods = answer.cohorts.reduce((n, c) => Math.max(n, c.returned.length), 0)
  const head = element('tr', {}, element('th', { scope: 'col', text: 'Cohort' }), element('th', { scope: 'col', text: 'Persons' }))
  for (let k = 0; k < periods; k++) head.appendChild(element('th', { scope: 'col', text: `${period} ${k}` }))
  table.appendChild(element('thead', {}, head))
  const body = element('tbody')
  for (const cohort of answer.cohorts) {
    const row = element('tr', {}, element('th', { scope: 'row', text: cohort.period.slice(0, 10) }), element('td', { text: String(cohort.size) }))
    cohort.share.forEach((share, k) => {
      const cell = element('td', { class: 'share', title: `${cohort.returned[k]} of ${cohort.size}`, text: percent(share) })
      cell.style.setProperty('--share', String(share))
      row.appendChild(cell)
    })
    body.appendChild(row)
  }
  table.appendChild(body)
  return table
}

/** The retention view. */
export async function retention (main, range, toolbar) {
  const search = searchParams()
  const result = element('div', { class: 'card scroll' })
  const names = await namesOrError(main, range, toolbar)
  if (!names) return
  const start = eventSelect(names, search.get('start') || names[0], 'Start event')
  const back = eventSelect(names, search.get('return') || names[0], 'Return event')
  const period = element('select', { 'aria-label': 'Period' },
    ...['day', 'week', 'month'].map(p => element('option', { value: p, text: `by ${p}` })))
  period.value = search.get('period_of') || 'week'
  const run = element('button', { type: 'submit', text: 'Show retention' })
  const form = element('form', { class: 'card analysis-form', 'aria-label': 'Retention' },
    element('h2', { text: 'Retention' }),
    element('div', { class: 'controls' }, element('span', { text: 'Persons who did' }), start, element('span', { text: 'and came back to' }), back, period, run))
  const show = async () => {
    remember({ start: start.value, return: back.value, period_of: period.value })
    result.replaceChildren(document.createTextNode('Loading…'))
    try {
      const answer = await analyse('v1/retention', {
        start_event: { event: start.value },
        return_event: { event: back.value },
        period: period.value,
        periods: period.value === 'day' ? 14 : period.value === 'week' ? 8 : 6,
        date_range: range
      })
      result.replaceChildren(answer.cohorts.length ? cohortGrid(answer, period.value) : element('p', { class: 'muted', text: 'No cohort in the period.' }))
    } catch (error) {
      result.replaceChildren(errorNote(error))
    }
  }
  form.addEventListener('submit', (event) => { event.preventDefault(); show() })
  main.replaceChildren(toolbar, form, result)
  if (names.length) show()
}

/** A view of one analysis over one event: its form, then its chart. */
async function oneEventView (main, range, toolbar, { title, path, draw, extra = [] }) {
  const search = searchParams()
  const result = element('div', { class: 'card scroll' })
  const names = await namesOrError(main, range, toolbar)
  if (!names) return
  const event = eventSelect(names, search.get('event') || names[0], 'Event')
  const period = element('select', { 'aria-label': 'Period' },
    ...['day', 'week', 'month'].map(p => element('option', { value: p, text: `by ${p}` })))
  period.value = search.get('period_of') || 'day'
  const fields = extra.map(make => make(search))
  const run = element('button', { type: 'submit', text: `Show ${title.toLowerCase()}` })
  const form = element('form', { class: 'card analysis-form', 'aria-label': title },
    element('h2', { text: title }),
    element('div', { class: 'controls' }, event, ...(path === 'v1/paths' ? [] : [period]), ...fields.map(f => f.control), run))
  const show = async () => {
    remember({ event: event.value, period_of: period.value, ...Object.fromEntries(fields.map(f => [f.name, f.control.value])) })
    result.replaceChildren(document.createTextNode('Loading…'))
    const body = path === 'v1/paths'
      ? { start_event: { event: event.value }, date_range: range }
      : { event: { event: event.value }, period: period.value, date_range: range }
    for (const field of fields) body[field.name] = field.control.value
    try {
      result.replaceChildren(draw(await analyse(path, body), period.value))
    } catch (error) {
      result.replaceChildren(errorNote(error))
    }
  }
  form.addEventListener('submit', (submitted) => { submitted.preventDefault(); show() })
  main.replaceChildren(toolbar, form, result)
  if (names.length) show()
}

/** Horizontal bars with a label and a value each. */
function bars (rows, label) {
  const list = element('ol', { class: 'rows', 'aria-label': label })
  const top = Math.max(1, ...rows.map(r => r.value))
  for (const row of rows) {
    const bar = element('span', { class: 'bar' })
    bar.style.width = `${Math.max(1, (100 * row.value) / top)}%`
    list.appendChild(element('li', {}, bar, element('span', { class: 'name', text: row.label }), element('span', { class: 'value', text: String(row.value) })))
  }
  return list
}

/** Persons by how many periods they did the event in. */
export const stickiness = (main, range, toolbar) => oneEventView(main, range, toolbar, {
  title: 'Stickiness',
  path: 'v1/stickiness',
  draw: (answer, period) => bars(answer.results.map(r => ({ label: `${r.periods} of ${answer.total_periods} ${period}s`, value: r.users })), 'Persons by active periods')
})

/** New, returning, resurrecting and dormant persons per period. */
export const lifecycle = (main, range, toolbar) => oneEventView(main, range, toolbar, {
  title: 'Lifecycle',
  path: 'v1/lifecycle',
  draw: (answer) => {
    const table = element('table', { class: 'cohorts lifecycle' })
    const kinds = ['new', 'returning', 'resurrecting', 'dormant']
    table.appendChild(element('thead', {}, element('tr', {}, element('th', { scope: 'col', text: 'Period' }),
      ...kinds.map(k => element('th', { scope: 'col', text: k })))))
    const body = element('tbody')
    for (const row of answer.periods) {
      body.appendChild(element('tr', {}, element('th', { scope: 'row', text: row.period.slice(0, 10) }),
        ...kinds.map(k => element('td', { class: `kind ${k}`, text: String(k === 'dormant' ? -row[k] : row[k]) }))))
    }
    table.appendChild(body)
    return table
  }
})

/** The events after (or before) a start event, step by step, as a flow diagram. */
export const paths = (main, range, toolbar) => oneEventView(main, range, toolbar, {
  title: 'Paths',
  path: 'v1/paths',
  extra: [(search) => {
    const control = element('select', { 'aria-label': 'Direction' },
      element('option', { value: 'next', text: 'what came after' }),
      element('option', { value: 'previous', text: 'what came before' }))
    control.value = search.get('direction') || 'next'
    return { name: 'direction', control }
  }],
  draw: (answer) => answer.nodes.length
    ? flowChart(answer, { label: 'Paths by step' })
    : element('p', { class: 'muted', text: 'No path in the period.' })
})
