"""The Detect tab in headless Chromium: pick an example, run it on tiny, see the result or the notice."""

import re

import pytest
from playwright.sync_api import expect
from waiting import wait_for_generation

pytestmark = pytest.mark.browser


def test_detect_example_runs_end_to_end_on_tiny(page, fixed_length_tiny):
    from pipelines.model.local import generation

    page.get_by_role("tab", name="🔎 Detect").click()
    page.get_by_label("Max new tokens").first.fill("32")
    page.get_by_text("the rocket on the launch pad").first.click()
    query = page.locator("#detect-query textarea")
    expect(query).to_have_value("the rocket on the launch pad")
    expect(page.locator("#detect-image img").first).to_be_visible()

    finished_before = generation.concurrency.finished
    page.locator("#detect-run").click()
    wait_for_generation(finished_before)

    # 32 tokens of random weights are not a JSON list of boxes: the notice, with the raw answer opened below.
    status = page.locator("#detect-status")
    expect(status).to_contain_text("No objects found", timeout=30_000)
    expect(page.locator("#detect-annotated img").first).to_be_visible()
    expect(page.locator("#detect-raw textarea")).to_be_visible()
    expect(page.locator("#detect-raw textarea")).not_to_have_value("")
    # Nothing found: nothing offered for download.
    expect(page.locator("#detect-json a")).to_have_count(0)
    expect(page.locator("#detect-png a")).to_have_count(0)
    page.screenshot(path="/tmp/detect_tiny.png", full_page=True)


def test_detect_shows_boxes_legend_table_and_thoughts_for_a_realistic_reply(page, use_scripted):

    use_scripted(
        "<|channel>thought\nThe cup is in the middle, the spoon on the right.<channel|>```json\n["
        '{"box_2d": [180, 260, 620, 700], "label": "cup"}, {"box_2d": [520, 700, 760, 950], "label": "spoon"}'
        "]\n```"
    )
    page.get_by_role("tab", name="🔎 Detect").click()
    page.get_by_label("Thinking mode").first.check()
    page.get_by_text("flag, helmet, space shuttle model").first.click()
    expect(page.locator("#detect-query textarea")).to_have_value("flag, helmet, space shuttle model")
    page.locator("#detect-run").click()

    status = page.locator("#detect-status")
    expect(status).to_contain_text("Found 2 objects", timeout=60_000)
    legend = page.locator("#detect-annotated .legend-item")
    expect(legend).to_have_text(["cup", "spoon"])
    expect(page.locator("#detect-table")).to_contain_text("spoon")
    expect(page.locator("#detect-json a").first).to_have_attribute("href", re.compile(r"detections\.json$"))
    expect(page.locator("#detect-png a").first).to_have_attribute("href", re.compile(r"detections\.png$"))
    page.get_by_text("🧠 Thinking").click()
    expect(page.locator("#detect-thoughts")).to_contain_text("the spoon on the right")
    page.screenshot(path="/tmp/detect_scripted.png", full_page=True)


def test_a_refused_input_shows_one_message_and_the_results_stay(page, use_scripted, tmp_path):
    """Detect with no image, then with a file that is not an image: one toast each, no "Error" on the outputs."""
    use_scripted('```json\n[{"box_2d": [180, 260, 620, 700], "label": "cup"}]\n```')
    page.get_by_role("tab", name="🔎 Detect").click()
    page.get_by_text("flag, helmet, space shuttle model").first.click()
    page.locator("#detect-run").click()
    status = page.locator("#detect-status")
    expect(status).to_contain_text("Found 1 object", timeout=60_000)

    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are notes, not a picture")
    page.locator("#detect-image button[aria-label='Remove Image']").first.click()
    for attempt in ("no image", "not an image"):
        if attempt == "not an image":
            page.locator("#detect-image input[type=file]").set_input_files(str(not_an_image))
        page.locator("#detect-run").click()
        toast = page.locator(".toast-body.error")
        expect(toast).to_have_count(1)
        expect(toast).to_contain_text("provide an image" if attempt == "no image" else "not a readable image")
        # The one message is the toast: no output is marked, and the last results are still shown.
        expect(page.locator('[data-testid="status-tracker"] .error:visible')).to_have_count(0)
        expect(status).to_contain_text("Found 1 object")
        expect(page.locator("#detect-table")).to_contain_text("cup")
        toast.locator(".toast-close").click()
        expect(toast).to_have_count(0)
