// The archive's copy button: the link is also in a read-only field, for browsers without the clipboard API.
document.addEventListener("click", (ev) => {
  const button = ev.target.closest("button[data-copy]");
  if (!button) return;
  const done = () => { button.textContent = button.dataset.copied; };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(button.dataset.copy).then(done, () => {});
  } else {
    const field = button.previousElementSibling;
    field.select();
    if (document.execCommand("copy")) done();
  }
});
