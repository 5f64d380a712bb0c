// Progressive enhancement for the admin console; every page works without it.
// - Keycloak's console links (#/realm/users) lead to the same screen here;
// - buttons marked data-confirm ask first;
// - "Copy" buttons copy the value they name;
// - a file chosen for partial import fills the text box.
(function () {
  'use strict'
  var hash = window.location.hash
  // Only a console path: letters, digits, '-', '_' and '/', never '..' or a scheme.
  if (hash.indexOf('#/') === 0 && /^[A-Za-z0-9_\/-]*$/.test(hash.slice(2)) && hash.indexOf('//') < 0) {
    var base = document.body.getAttribute('data-base')
    if (base) window.location.replace(base + '/' + hash.slice(2))
  }
  document.addEventListener('click', function (e) {
    var t = e.target.closest('[data-confirm]')
    if (t && !window.confirm(t.getAttribute('data-confirm'))) e.preventDefault()
    var c = e.target.closest('[data-copy]')
    if (c) {
      var source = document.getElementById(c.getAttribute('data-copy'))
      if (source && navigator.clipboard) navigator.clipboard.writeText(source.textContent.trim())
    }
  })
  var file = document.getElementById('import-file')
  if (file) {
    file.hidden = false
    file.addEventListener('change', function () {
      var f = file.files[0]
      if (!f) return
      f.text().then(function (text) { document.getElementById('document').value = text })
    })
  }
})()
