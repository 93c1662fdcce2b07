// Sends one message of each type through Segment's own Node library.
// Usage: node send.mjs HOST WRITE_KEY; exits non-zero if the library reports an error.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushAt: 6, maxRetries: 0 })
const errors = []
analytics.on('error', (error) => errors.push(String(error?.reason ?? error?.message ?? error)))

const timestamp = new Date('2026-03-02T09:30:00Z')
analytics.identify({ userId: 'node-user', traits: { email: 'node@example.com' }, timestamp, messageId: 'node-identify' })
analytics.track({ userId: 'node-user', event: 'Plan Upgraded', properties: { plan: 'team', seats: 5 }, timestamp, messageId: 'node-track' })
analytics.page({ anonymousId: 'node-anon', name: 'Pricing', properties: { path: '/pricing' }, timestamp, messageId: 'node-page' })
analytics.screen({ userId: 'node-user', name: 'Settings', timestamp, messageId: 'node-screen' })
analytics.group({ userId: 'node-user', groupId: 'globex', traits: { name: 'Globex' }, timestamp, messageId: 'node-group' })
analytics.alias({ userId: 'node-user', previousId: 'node-anon', timestamp, messageId: 'node-alias' })
await analytics.closeAndFlush({ timeout: 10000 })
if (errors.length > 0) {
  console.error(errors.join('\n'))
  process.exit(1)
}
