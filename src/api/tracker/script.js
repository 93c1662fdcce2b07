/* analytics tracker: page views (single-page apps included), outbound-link
   and file-download clicks, custom events, engagement time and scroll depth.
   No cookie, no storage of its own; sends Plausible's event format.
   <script defer data-domain="shop.example" src="https://analytics.example/js/script.js"></script>
   Attributes: data-domain (default: this page's host), data-api (default:
   /api/event next to this script), data-hash (pages are in the URL's
   fragment), data-allow-localhost. Opt out in a browser with
   localStorage.analytics_ignore = "true". */
(function () {
  'use strict';
  var w = window, d = document, l = w.location;
  var script = d.currentScript;
  var attr = function (name) { return script && script.getAttribute('data-' + name); };
  var domain = attr('domain') || l.hostname.replace(/^www\./, '');
  var api = attr('api') || (script ? new URL('/api/event', script.src).href : '/api/event');
  var hashMode = attr('hash') !== null;
  var downloads = /\.(pdf|xlsx?|docx?|txt|rtf|csv|exe|key|pp[st]x?|7z|pkg|rar|gz|zip|avi|mov|mp4|mpe?g|wmv|midi?|mp3|wav|wma|dmg|iso|msi|epub|apk)$/i;

  function ignored() {
    if (/^localhost$|^127(\.\d+){3}$|^\[::1\]$/.test(l.hostname) || l.protocol === 'file:') {
      if (attr('allow-localhost') === null) return 'localhost';
    }
    try {
      var flag = w.localStorage.getItem('analytics_ignore') || w.localStorage.getItem('plausible_ignore');
      if (flag === 'true') return 'opted out';
    } catch (e) { /* storage blocked: not opted out */ }
    return null;
  }

  function send(name, options, beacon) {
    options = options || {};
    var why = ignored();
    if (why) {
      if (options.callback) options.callback({ ignored: why });
      return;
    }
    var body = { n: name, u: options.url || l.href, d: domain, r: d.referrer || null };
    if (options.props) body.p = options.props;
    if (options.revenue) body.$ = options.revenue;
    if (options.interactive === false) body.i = false;
    if (options.sd !== undefined) { body.sd = options.sd; body.e = options.e; }
    if (hashMode) body.h = 1;
    var text = JSON.stringify(body);
    if (beacon && navigator.sendBeacon && navigator.sendBeacon(api, new Blob([text], { type: 'text/plain' }))) {
      return;
    }
    var done = function (status) { if (options.callback) options.callback({ status: status }); };
    if (w.fetch) {
      fetch(api, { method: 'POST', body: text, keepalive: true, headers: { 'Content-Type': 'text/plain' } })
        .then(function (r) { done(r.status); }, function () { done(0); });
    } else {
      var x = new XMLHttpRequest();
      x.open('POST', api, true);
      x.setRequestHeader('Content-Type', 'text/plain');
      x.onreadystatechange = function () { if (x.readyState === 4) done(x.status); };
      x.send(text);
    }
  }

  /* Engagement: time the page was visible and the deepest scroll, sent
     when the page is hidden or left, and before the next page view. */
  var engagedMs = 0, visibleSince = d.visibilityState === 'visible' ? Date.now() : null, maxScroll = 0;
  var pageUrl = null;
  function scrollDepth() {
    var el = d.documentElement, b = d.body || {};
    var height = Math.max(el.scrollHeight || 0, b.scrollHeight || 0, el.offsetHeight || 0);
    var seen = (w.scrollY || el.scrollTop || 0) + w.innerHeight;
    return height <= w.innerHeight ? 100 : Math.min(100, Math.round(seen / height * 100));
  }
  function engagement() {
    if (visibleSince !== null) { engagedMs += Date.now() - visibleSince; visibleSince = null; }
    maxScroll = Math.max(maxScroll, scrollDepth());
    if (engagedMs >= 1000 || maxScroll > 0) {
      send('engagement', { sd: maxScroll, e: engagedMs, interactive: false, url: pageUrl }, true);
    }
    engagedMs = 0;
    maxScroll = 0;
  }
  d.addEventListener('visibilitychange', function () {
    if (d.visibilityState === 'hidden') engagement();
    else visibleSince = Date.now();
  });
  w.addEventListener('scroll', function () { maxScroll = Math.max(maxScroll, scrollDepth()); }, { passive: true });

  var lastPage = null;
  function pageview() {
    var page = hashMode ? l.pathname + l.hash : l.pathname;
    if (page === lastPage) return;
    if (lastPage !== null) engagement();
    lastPage = page;
    pageUrl = l.href;
    visibleSince = d.visibilityState === 'visible' ? Date.now() : null;
    maxScroll = scrollDepth();
    send('pageview');
  }

  /* Single-page apps: the History API and, in hash mode, the fragment. */
  var history = w.history;
  if (history.pushState) {
    var push = history.pushState;
    history.pushState = function () { push.apply(this, arguments); pageview(); };
    w.addEventListener('popstate', pageview);
  }
  if (hashMode) w.addEventListener('hashchange', pageview);

  /* Outbound links and file downloads. */
  d.addEventListener('click', function (event) {
    var link = event.target && event.target.closest ? event.target.closest('a[href]') : null;
    if (!link) return;
    var url;
    try { url = new URL(link.href, l.href); } catch (e) { return; }
    if (!/^https?:$/.test(url.protocol)) return;
    if (downloads.test(url.pathname)) {
      send('File Download', { props: { url: url.href } });
    } else if (url.host !== l.host) {
      send('Outbound Link: Click', { props: { url: url.href } });
    }
  }, true);

  /* Custom events: plausible('Signup', {props: {...}, revenue: {...}, callback}),
     also through calls queued before this script loaded (plausible.q). */
  var queued = (w.plausible && w.plausible.q) || [];
  w.plausible = function (name, options) { send(name, options); };
  for (var i = 0; i < queued.length; i++) w.plausible.apply(null, queued[i]);

  if (d.visibilityState === 'prerender') {
    d.addEventListener('visibilitychange', function wait() {
      if (d.visibilityState === 'visible') { d.removeEventListener('visibilitychange', wait); pageview(); }
    });
  } else {
    pageview();
  }
})();
