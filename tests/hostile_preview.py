"""A hostile page for the screenshot preview, and the checks that none of its escapes got through.

The page tries to read the parent's DOM, cookies and storage, navigate the top window, open a popup, submit a
form to the app and fetch from it, and reports each outcome to the parent with postMessage. Shared by the
preview on its own (tests/test_preview_sandbox.py) and the preview in the real app
(tests/test_browser_screenshot.py).
"""

from __future__ import annotations

SECRET = "s3cret-session-value"
MARKER = "preview-escape-marker"

HOSTILE_PAGE = """<!DOCTYPE html><html><body><h1>Totally harmless page</h1>
<script>
const APP = "__APP_URL__";
function report(name, outcome, detail) {
  parent.postMessage({probe: "preview", name: name, outcome: outcome, detail: String(detail)}, "*");
}
function attempt(name, action) {
  try {
    report(name, "succeeded", action());
  } catch (error) {
    report(name, "blocked", error.name + ": " + error.message);
  }
}
function needValue(value, what) {
  if (value === null || value === undefined || value === "") throw new Error("no " + what);
  return value;
}
async function probe() {
  attempt("read_parent_document", () => parent.document.body.innerHTML);
  attempt("read_top_document", () => top.document.title);
  attempt("read_cookie", () => needValue(document.cookie, "cookie"));
  attempt("read_local_storage", () => needValue(localStorage.getItem("preview-secret"), "stored item"));
  attempt("read_session_storage", () => sessionStorage.length);
  attempt("open_popup", () => {
    // Only test the handle: stringifying a cross-origin window would throw and look like a block.
    if (!window.open(APP + "?popup=__MARKER__", "_blank")) throw new Error("window.open returned null");
    return "window opened";
  });
  try {
    const response = await fetch(APP + "?fetch=__MARKER__");
    report("fetch_app", "succeeded", response.status);
  } catch (error) {
    report("fetch_app", "blocked", error.name + ": " + error.message);
  }
  attempt("navigate_top", () => { top.location.href = APP + "?navigated=__MARKER__"; return "assigned"; });
  attempt("navigate_parent", () => { parent.location.href = APP + "?parent=__MARKER__"; return "assigned"; });
  const form = document.createElement("form");
  form.action = APP + "?form=__MARKER__";
  form.method = "post";
  form.target = "_top";
  document.body.appendChild(form);
  attempt("submit_form", () => { form.submit(); return "submit() returned"; });
  // Had any navigation of the app gone through, this page would be gone before reporting.
  setTimeout(() => report("finished", "done", location.href), 500);
}
probe();
</script></body></html>"""

READ_ATTEMPTS = ("read_parent_document", "read_top_document", "read_cookie", "read_local_storage",
                 "read_session_storage")  # fmt: skip
ACTION_ATTEMPTS = ("open_popup", "fetch_app", "navigate_top", "navigate_parent")

# Runs in the app page: plants the secret where the preview would look for it and collects its reports.
PLANT_SECRET_AND_COLLECT_REPORTS = """secret => {
    localStorage.setItem("preview-secret", secret);
    sessionStorage.setItem("preview-secret", secret);
    window.previewReports = [];
    window.addEventListener("message", event => {
        if (event.data && event.data.probe === "preview") window.previewReports.push(event.data);
    });
}"""
# A successful escape replaces the app page (and its report list) before the end.
PROBE_FINISHED_OR_PAGE_REPLACED = (
    "!window.previewReports || window.previewReports.some(report => report.name === 'finished')"
)


def hostile_page(app_url: str) -> str:
    """The hostile page aimed at `app_url`, every request it makes carrying MARKER."""
    return HOSTILE_PAGE.replace("__APP_URL__", app_url).replace("__MARKER__", MARKER)


def plant_secret_and_collect_reports(page) -> None:
    """Put SECRET in the app page's storage and start collecting the preview's reports.

    The cookie is the caller's to add (to the browser context), before or after the page loads; it must be set.
    """
    page.evaluate(PLANT_SECRET_AND_COLLECT_REPORTS, SECRET)
    assert SECRET in page.evaluate("document.cookie")


def wait_until_the_probe_finishes(page, **wait_options) -> None:
    page.wait_for_function(PROBE_FINISHED_OR_PAGE_REPLACED, **wait_options)


def assert_every_escape_was_blocked(page) -> None:
    """The preview's own reports: every attempt blocked, and the secret in none of them."""
    reports = {report["name"]: report for report in page.evaluate("window.previewReports")}
    for name in READ_ATTEMPTS + ACTION_ATTEMPTS:
        assert reports[name]["outcome"] == "blocked", reports[name]
    assert all(SECRET not in report["detail"] for report in reports.values())
    # form.submit() fails silently in a sandbox; the caller's record of what reached the app proves it.
    assert reports["submit_form"]["detail"] == "submit() returned"
    assert reports["finished"]["detail"] == "about:srcdoc"
