// guardflow report: attempts are filled in when opened, from the data
// block, with textContent only (nothing from the run becomes markup).
(function () {
  'use strict';
  var data = { attempts: [] };
  function load() {
    var el = document.getElementById('gf-data');
    try { data = JSON.parse(el ? el.textContent : '{}'); } catch (e) { data = { attempts: [] }; }
    if (!data.attempts) { data.attempts = []; }
  }
  load();
  function node(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function cut(n) {
    return n ? '\n… ' + n + ' more bytes cut here (the full text: `guardflow trace`)' : '';
  }
  function block(body, title, text, cutBytes) {
    body.appendChild(node('h4', null, title));
    var pre = node('pre', null, text);
    if (cutBytes) { pre.appendChild(node('span', 'cut', cut(cutBytes))); }
    body.appendChild(pre);
  }
  function lines(text) {
    if (!text) { return []; }
    var out = [], start = 0;
    for (var i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) === 10) { out.push(text.slice(start, i + 1)); start = i + 1; }
    }
    if (start < text.length) { out.push(text.slice(start)); }
    return out;
  }
  function diff(body, a) {
    var prev = data.attempts[a.pv];
    if (!prev || !a.d) { return; }
    var old = lines(prev.o), neu = lines(a.o), i = 0, j = 0;
    body.appendChild(node('h4', null, 'diff against attempt ' + prev.n + "'s output"));
    var pre = node('pre', 'diff');
    function line(cls, mark, l) { pre.appendChild(node('span', cls, mark + l.replace(/\n$/, ''))); }
    a.d.forEach(function (run) {
      var k = run[0], n = run[1], x;
      if (k === 0) {
        if (n > 8) {
          for (x = 0; x < 3; x++) { line('same', '  ', old[i + x] || ''); }
          pre.appendChild(node('span', 'skip', '  … ' + (n - 6) + ' unchanged lines'));
          for (x = n - 3; x < n; x++) { line('same', '  ', old[i + x] || ''); }
        } else {
          for (x = 0; x < n; x++) { line('same', '  ', old[i + x] || ''); }
        }
        i += n; j += n;
      } else if (k === 1) {
        for (x = 0; x < n; x++) { line('del', '- ', old[i + x] || ''); }
        i += n;
      } else {
        for (x = 0; x < n; x++) { line('add', '+ ', neu[j + x] || ''); }
        j += n;
      }
    });
    if (!a.d.length) { pre.appendChild(node('span', 'same', '(the same output)')); }
    body.appendChild(pre);
  }
  var words = { pass: 'passed', fail: 'rejected', fatal: 'fatal', interrupted: 'interrupted' };
  function fill(details) {
    if (details.getAttribute('data-filled')) { return; }
    var a = data.attempts[+details.getAttribute('data-attempt')];
    var body = details.querySelector('.body');
    if (!a || !body) { return; }
    details.setAttribute('data-filled', '1');
    body.textContent = '';
    body.appendChild(node('p', 'verdict', 'verdict: ' + (a.v ? (words[a.v] || a.v) : 'not judged yet') +
      (a.provider ? ' · served by ' + a.provider : '')));
    if (a.r !== undefined) { block(body, 'role', a.r, a.rc); }
    block(body, 'prompt', a.p, a.pc);
    block(body, 'output', a.no ? '(no answer)' : a.o, a.oc);
    if (a.f || a.fc) { block(body, 'feedback', a.f, a.fc); }
    (a.j || []).forEach(function (j) {
      block(body, 'judge ' + j.g + ' asked ' + j.m + ' (call ' + j.c + '): prompt', j.p, j.pc);
      block(body, 'judge ' + j.g + ': answer', j.a, j.ac);
    });
    if (a.jc) { body.appendChild(node('p', 'cut', a.jc + ' more judge calls (see `guardflow trace`)')); }
    diff(body, a);
  }
  document.addEventListener('toggle', function (e) {
    var t = e.target;
    if (t && t.classList && t.classList.contains('attempt') && t.open) { fill(t); }
  }, true);
  document.addEventListener('click', function (e) {
    var g = e.target && e.target.closest ? e.target.closest('g.attempt') : null;
    if (!g) { return; }
    var d = document.getElementById('a' + g.getAttribute('data-attempt'));
    if (!d) { return; }
    for (var up = d.parentElement; up; up = up.parentElement) {
      if (up.tagName === 'DETAILS') { up.open = true; }
    }
    d.open = true;
    fill(d);
    d.scrollIntoView({ block: 'center' });
    d.classList.add('flash');
    setTimeout(function () { d.classList.remove('flash'); }, 1500);
  });
  // served: a running run follows its events; each batch re-reads the page
  var main = document.getElementById('report');
  var url = main && main.getAttribute('data-events');
  if (!url || typeof EventSource === 'undefined') { return; }
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var open = [];
    document.querySelectorAll('details[open][id]').forEach(function (d) { open.push(d.id); });
    fetch(location.href, { headers: { 'Accept': 'text/html' } }).then(function (r) { return r.text(); }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, 'text/html');
      var fresh = doc.getElementById('report'), block = doc.getElementById('gf-data');
      var cur = document.getElementById('report');
      if (fresh && cur) {
        cur.replaceWith(document.importNode(fresh, true));
        document.getElementById('gf-data').textContent = block ? block.textContent : '{}';
        load();
        open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; fill(d); } });
      }
    }).catch(function () {}).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }
  var source = new EventSource(url + '?after=' + (main.getAttribute('data-seq') || '0'));
  source.addEventListener('event', refresh);
  source.addEventListener('end', function () { source.close(); refresh(); });
})();
