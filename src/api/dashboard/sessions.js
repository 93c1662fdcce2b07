// Sessions: how many visits there were, how long and how deep they went,
// over time and by where they started, ended or came from. All from
// /v1/query's session metrics.

import { query } from './api.js'
import { lineChart } from './charts.js'
import { bucketLabel, element, formatMetric } from './dom.js'
import { errorNote } from './panels.js'
import { intervals, remember, searchParams } from './state.js'

const SESSION_METRICS = [
  ['visits', 'Sessions', 'count'],
  ['visit_duration', 'Average duration', 'duration'],
  ['bounce_rate', 'Bounce rate', 'percent'],
  ['views_per_visit', 'Pages per session', 'decimal'],
  ['events_per_session', 'Events per session', 'decimal']
]

const GROUPS = [
  ['session:entry_page', 'Entry page'],
  ['session:exit_page', 'Exit page'],
  ['visit:channel', 'Channel'],
  ['visit:source', 'Source'],
  ['visit:device', 'Device'],
  ['visit:country', 'Country']
]

const ROWS = 20

function select (label, options, value) {
  const control = element('select', { 'aria-label': label },
    ...options.map(([key, text]) => element('option', { value: key, text })))
  control.value = options.some(([key]) => key === value) ? value : options[0][0]
  return control
}

/** The totals of every session metric. */
function totals (answer) {
  const values = answer.results[0] ? answer.results[0].metrics : []
  return element('div', { class: 'stats' }, ...SESSION_METRICS.map(([, label, kind], i) =>
    element('div', { class: 'stat' },
      element('span', { class: 'label', text: label }),
      element('span', { class: 'number', text: formatMetric(kind, values[i]) }))))
}

/** Every session metric per group, the groups with most sessions first. */
function groupTable (answer, groupLabel) {
  const table = element('table', { class: 'cohorts sessions-table' })
  table.appendChild(element('thead', {}, element('tr', {},
    element('th', { scope: 'col', text: groupLabel }),
    ...SESSION_METRICS.map(([, label]) => element('th', { scope: 'col', text: label })))))
  const body = element('tbody')
  for (const row of answer.results) {
    body.appendChild(element('tr', {},
      element('th', { scope: 'row', text: row.dimensions[0] ?? '(none)' }),
      ...SESSION_METRICS.map(([, , kind], i) => element('td', { text: formatMetric(kind, row.metrics[i]) }))))
  }
  table.appendChild(body)
  return table
}

/** The sessions view. */
export async function sessions (main, range, toolbar, filters) {
  const search = searchParams()
  const chosen = select('Chart metric', SESSION_METRICS, search.get('session_metric'))
  const by = select('Group by', GROUPS, search.get('by'))
  const form = element('form', { class: 'card analysis-form', 'aria-label': 'Sessions' },
    element('h2', { text: 'Sessions' }),
    element('div', { class: 'controls' }, element('span', { text: 'Chart' }), chosen, element('span', { text: 'grouped by' }), by))
  const stats = element('section', { class: 'card' }, document.createTextNode('Loading…'))
  const chart = element('div', { class: 'chart-box' })
  const chartTitle = element('h2')
  const graphCard = element('section', { class: 'card graph' }, element('div', { class: 'graph-head' }, chartTitle), chart)
  const table = element('section', { class: 'card scroll' }, document.createTextNode('Loading…'))
  main.replaceChildren(toolbar, form, stats, graphCard, table)
  const interval = intervals(range)[0]
  const metrics = SESSION_METRICS.map(([metric]) => metric)

  const drawTotals = async () => {
    try {
      stats.replaceChildren(totals(await query({ metrics, date_range: range, filters })))
    } catch (error) {
      stats.replaceChildren(errorNote(error))
    }
  }
  const drawChart = async () => {
    const [metric, label, kind] = SESSION_METRICS.find(([m]) => m === chosen.value)
    chartTitle.textContent = `${label} by ${interval}`
    try {
      const answer = await query({
        metrics: [metric],
        date_range: range,
        dimensions: [`time:${interval}`],
        filters,
        include: { time_labels: true }
      })
      const labels = answer.meta.time_labels || answer.results.map(r => r.dimensions[0])
      const byLabel = new Map(answer.results.map(r => [r.dimensions[0], r.metrics[0]]))
      lineChart(chart, {
        labels,
        series: [{ name: label, values: labels.map(l => byLabel.get(l) ?? (kind === 'count' ? 0 : null)) }],
        title: `${label} by ${interval}`,
        formatValue: (v) => formatMetric(kind, v),
        formatLabel: (l, long) => bucketLabel(l, interval, long)
      })
    } catch (error) {
      chart.replaceChildren(errorNote(error))
    }
  }
  const drawTable = async () => {
    const [dimension, label] = GROUPS.find(([d]) => d === by.value)
    try {
      const answer = await query({
        metrics,
        date_range: range,
        dimensions: [dimension],
        filters,
        order_by: [['visits', 'desc']],
        pagination: { limit: ROWS }
      })
      table.replaceChildren(answer.results.length ? groupTable(answer, label) : element('p', { class: 'muted', text: 'No session in the period.' }))
    } catch (error) {
      table.replaceChildren(errorNote(error))
    }
  }
  chosen.addEventListener('change', () => { remember({ session_metric: chosen.value }); drawChart() })
  by.addEventListener('change', () => { remember({ by: by.value }); drawTable() })
  form.addEventListener('submit', (event) => event.preventDefault())
  await Promise.all([drawTotals(), drawChart(), drawTable()])
}
