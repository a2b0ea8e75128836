// Submit a filter form when one of its <select data-autosubmit> changes (no inline handlers:
// the Content-Security-Policy allows only scripts from /static).
document.addEventListener("change", function (ev) {
  var el = ev.target;
  if (el && el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) {
    el.form.submit();
  }
});
