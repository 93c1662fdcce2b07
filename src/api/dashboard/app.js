// The dashboard: sign-in with a read key, the overview (top stats against
// a comparison period, the main graph, breakdown panels) and realtime, all
// from the public API.

import * as api from './api.js'
import { funnels, lifecycle, paths, retention, stickiness } from './analyses.js'
import { lineChart } from './charts.js'
import { bucketLabel, count, element, formatMetric } from './dom.js'
import { PANELS, errorNote, panel } from './panels.js'
import { sessions } from './sessions.js'
import {
  METRICS, PERIODS, comparisonMode, intervals, periodRange, readState, shiftRange, writeState
} from './state.js'

const main = document.getElementById('main')
let project = null
let state = readState()
let refresh = null

function change (current, previous) {
  if (typeof current !== 'number' || typeof previous !== 'number' || previous === 0) return null
  return Math.round(((current - previous) / previous) * 100)
}

function setState (update, replace = false) {
  state = { ...state, ...update }
  writeState(state, replace)
  render()
}

function signInView (message) {
  document.getElementById('views').hidden = true
  document.getElementById('sign-out').hidden = true
  document.getElementById('project').textContent = ''
  const input = element('input', { id: 'read-key', type: 'password', autocomplete: 'off', required: '' })
  const form = element('form', {
    class: 'card sign-in',
    onsubmit: async (event) => {
      event.preventDefault()
      api.signIn(input.value.trim())
      await start()
    }
  },
  element('h1', { text: 'Sign in' }),
  element('p', { text: 'Paste a read key of your project. It is kept in this tab only.' }),
  element('label', { for: 'read-key', text: 'Read key' }),
  input,
  element('button', { type: 'submit', text: 'Open dashboard' }))
  if (message) form.appendChild(element('p', { class: 'error', role: 'alert', text: message }))
  main.replaceChildren(form)
  input.focus()
}

/** The controls: period, arrows, comparison, and the filter pills. */
function controls (range) {
  const select = element('select', {
    'aria-label': 'Period',
    onchange: (event) => {
      const period = event.target.value
      const update = { period, interval: '' }
      if (period === 'custom') {
        const [from, to] = Array.isArray(range) ? range : periodRange({ period: '30d' }, project.timezone)
        update.from = from
        update.to = to
      }
      setState(update)
    }
  }, ...PERIODS.map(([value, label]) => element('option', { value, text: label })))
  select.value = state.period
  const bar = element('div', { class: 'controls' })
  if (Array.isArray(range)) {
    const move = (direction) => {
      const [from, to] = shiftRange(range, direction)
      setState({ period: 'custom', from, to })
    }
    bar.append(element('button', { type: 'button', class: 'arrow', 'aria-label': 'Previous period', text: '‹', onclick: () => move(-1) }))
    bar.append(select)
    bar.append(element('button', { type: 'button', class: 'arrow', 'aria-label': 'Next period', text: '›', onclick: () => move(1) }))
  } else {
    bar.append(select)
  }
  if (state.period === 'custom') {
    const date = (name) => element('input', {
      type: 'date',
      'aria-label': name === 'from' ? 'From' : 'To',
      value: state[name] || '',
      onchange: (event) => setState({ [name]: event.target.value })
    })
    bar.append(date('from'), date('to'))
  }
  const compare = element('select', {
    'aria-label': 'Compare with',
    onchange: (event) => setState({ compare: event.target.value })
  },
  element('option', { value: 'off', text: 'No comparison' }),
  element('option', { value: 'previous', text: 'Compare with previous period' }),
  element('option', { value: 'year', text: 'Compare with a year earlier' }))
  compare.value = state.compare
  compare.disabled = range === 'all'
  bar.append(compare)
  const pills = element('ul', { class: 'pills', 'aria-label': 'Filters' })
  state.filters.forEach((filter, i) => {
    const [op, dimension, values] = filter
    pills.appendChild(element('li', {},
      element('span', { text: `${dimension.replace(/^(visit|event):/, '')} ${op.replace('_', ' ')} ${values.join(', ')}` }),
      element('button', {
        type: 'button',
        class: 'remove',
        'aria-label': `Remove filter ${dimension}`,
        text: '×',
        onclick: () => setState({ filters: state.filters.filter((_, j) => j !== i) })
      })))
  })
  return element('div', { class: 'toolbar' }, bar, pills)
}

/** Top stats with their change; clicking one charts it. */
async function topStats (container, context) {
  try {
    const current = await api.query({
      metrics: METRICS.map(([m]) => m),
      date_range: context.range,
      filters: state.filters,
      ...(context.comparison ? { compare: context.comparison } : {})
    })
    const previous = current.comparison
    const values = current.results[0] ? current.results[0].metrics : []
    const before = previous && previous.results[0] ? previous.results[0].metrics : []
    container.replaceChildren(...METRICS.map(([metric, label, kind], i) => {
      const delta = previous ? change(values[i], before[i]) : null
      const better = metric === 'bounce_rate' ? delta < 0 : delta > 0
      const stat = element('button', {
        type: 'button',
        class: `stat${state.metric === metric ? ' selected' : ''}`,
        'aria-pressed': String(state.metric === metric),
        onclick: () => setState({ metric })
      },
      element('span', { class: 'label', text: label }),
      element('span', { class: 'number', text: formatMetric(kind, values[i]) }))
      if (delta !== null) {
        stat.appendChild(element('span', {
          class: `delta ${delta === 0 ? '' : better ? 'good' : 'bad'}`,
          text: `${delta > 0 ? '↑' : delta < 0 ? '↓' : ''} ${Math.abs(delta)}%`
        }))
      }
      return stat
    }))
  } catch (error) {
    container.replaceChildren(errorNote(error))
  }
}

/** The main graph of the chosen metric, with the comparison as a second line. */
async function graph (container, context) {
  const [metric, label, kind] = METRICS.find(([m]) => m === state.metric)
  try {
    const current = await api.query({
      metrics: [metric],
      date_range: context.range,
      dimensions: [`time:${context.interval}`],
      filters: state.filters,
      include: { time_labels: true },
      ...(context.comparison ? { compare: context.comparison } : {})
    })
    const previous = current.comparison
    const labels = current.meta.time_labels || current.results.map(r => r.dimensions[0])
    const byLabel = new Map(current.results.map(r => [r.dimensions[0], r.metrics[0]]))
    const series = [{ name: label, values: labels.map(l => byLabel.get(l) ?? 0) }]
    if (previous) {
      const earlier = previous.meta.time_labels || []
      const values = new Map(previous.results.map(r => [r.dimensions[0], r.metrics[0]]))
      series.push({ name: `${label} (comparison)`, comparison: true, values: labels.map((_, i) => values.get(earlier[i]) ?? (i < earlier.length ? 0 : null)) })
    }
    lineChart(container, {
      labels,
      series,
      title: `${label} by ${context.interval}`,
      formatValue: (v) => formatMetric(kind, v),
      formatLabel: (l, long) => bucketLabel(l, context.interval, long)
    })
  } catch (error) {
    container.replaceChildren(errorNote(error))
  }
}

function overview () {
  const range = periodRange(state, project.timezone)
  const choices = intervals(range)
  const interval = choices.includes(state.interval) ? state.interval : choices[0]
  const context = {
    range,
    comparison: comparisonMode(state, range),
    interval,
    filters: state.filters,
    addFilter: (filter) => {
      const others = state.filters.filter(f => f[1] !== filter[1])
      setState({ filters: [...others, filter] })
    }
  }
  const stats = element('div', { class: 'stats', 'aria-live': 'polite' }, document.createTextNode('Loading…'))
  const chart = element('div', { class: 'chart-box' })
  const intervalSelect = element('select', {
    'aria-label': 'Interval',
    onchange: (event) => setState({ interval: event.target.value })
  }, ...choices.map(i => element('option', { value: i, text: i })))
  intervalSelect.value = interval
  const graphCard = element('section', { class: 'card graph' },
    element('div', { class: 'graph-head' }, element('h2', { text: METRICS.find(([m]) => m === state.metric)[1] }), intervalSelect),
    chart)
  const cards = PANELS.map(definition => panel(definition, context))
  const grid = element('div', { class: 'panels' }, ...cards)
  main.replaceChildren(controls(range), element('section', { class: 'card' }, stats), graphCard, grid)
  // With a goal picked, its properties break it down.
  const goal = state.filters.find(([op, dimension, values]) => op === 'is' && dimension === 'event:name' && values.length === 1)
  if (goal) {
    api.properties(goal[2][0], range).then((found) => {
      const tabs = found.items.slice(0, 8).map(item => [item.name, `event:props:${item.name}`, { properties: true }])
      if (tabs.length) grid.appendChild(panel({ title: `Properties of ${goal[2][0]}`, tabs }, context))
    }).catch((error) => grid.appendChild(errorNote(error)))
  }
  const drawn = [topStats(stats, context), graph(chart, context), ...cards.map(card => card.loaded)]
  markReady('overview', drawn)
}

let rendered = 0

/**
 * Marks the page ready (`data-ready` on the body, a `ready` performance
 * mark) once everything `drawn` has settled, unless another view was
 * rendered meanwhile.
 */
function markReady (view, drawn) {
  const turn = rendered
  Promise.all(drawn).then(() => {
    if (turn !== rendered) return
    performance.mark('ready')
    document.body.dataset.ready = view
  })
}

/** Visitors of the last five minutes, refreshed, and the last 30 minutes' panels. */
function realtime () {
  const now = element('p', { class: 'realtime-number', 'aria-live': 'polite', text: '…' })
  const minutesAgo = (minutes) => new Date(Date.now() - minutes * 60000).toISOString()
  const context = {
    get range () { return [minutesAgo(30), new Date().toISOString()] },
    filters: state.filters,
    addFilter: (filter) => setState({ view: 'overview', filters: [...state.filters.filter(f => f[1] !== filter[1]), filter] })
  }
  const update = async () => {
    try {
      const answer = await api.query({ metrics: ['visitors'], date_range: [minutesAgo(5), new Date().toISOString()], filters: state.filters })
      now.textContent = `${count(answer.results[0] ? answer.results[0].metrics[0] : 0)} current visitors (last 5 minutes)`
    } catch (error) {
      now.replaceChildren(errorNote(error))
    }
  }
  const grid = element('div', { class: 'panels' }, ...PANELS.filter(p => p.title !== 'Goals').map(definition => panel(definition, context)))
  main.replaceChildren(element('section', { class: 'card' }, now), element('h2', { class: 'section', text: 'Last 30 minutes' }), grid)
  update()
  refresh = setInterval(update, 10000)
}

function render () {
  rendered += 1
  delete document.body.dataset.ready
  clearInterval(refresh)
  refresh = null
  for (const link of document.querySelectorAll('#views a')) {
    if (link.dataset.view === state.view) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  const range = periodRange(state, project.timezone)
  if (state.view === 'realtime') realtime()
  else if (state.view === 'funnels') funnels(main, range, controls(range))
  else if (state.view === 'retention') retention(main, range, controls(range))
  else if (state.view === 'stickiness') stickiness(main, range, controls(range))
  else if (state.view === 'lifecycle') lifecycle(main, range, controls(range))
  else if (state.view === 'paths') paths(main, range, controls(range))
  else if (state.view === 'sessions') sessions(main, range, controls(range), state.filters)
  else overview()
}

async function start () {
  if (!api.readKey()) return signInView()
  try {
    project = await api.project()
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      api.signOut()
      // A shared link that no longer opens: sign in with a key instead.
      history.replaceState(null, '', location.pathname)
      return signInView(error.message)
    }
    main.replaceChildren(errorNote(error))
    return
  }
  document.getElementById('project').textContent = `${project.id} · ${project.timezone}${project.shared ? ' · shared view' : ''}`
  document.getElementById('views').hidden = false
  document.getElementById('sign-out').hidden = project.shared
  if (project.shared) {
    // A shared link opens the overview and realtime, read-only.
    for (const link of document.querySelectorAll('#views a')) {
      link.hidden = !['overview', 'realtime'].includes(link.dataset.view)
    }
    if (!['overview', 'realtime'].includes(state.view)) state.view = 'overview'
  }
  render()
}

document.getElementById('sign-out').addEventListener('click', () => {
  api.signOut()
  signInView()
})
for (const link of document.querySelectorAll('#views a')) {
  link.addEventListener('click', (event) => {
    event.preventDefault()
    setState({ view: link.dataset.view })
  })
}
window.addEventListener('popstate', () => {
  state = readState()
  if (project) render()
})
start()
