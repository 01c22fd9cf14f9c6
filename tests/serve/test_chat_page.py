"""gradient serve's chat page (GET /) in headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) against a server on 127.0.0.1: a message typed and
sent streams the model's reply into the page, a second turn sends the conversation, Stop
ends a reply, and a screenshot is saved."""

from __future__ import annotations

import shutil

import pytest

from .test_server import _greedy, server  # noqa: F401  (the fixture)
from ..hub.conftest import llama_dir  # noqa: F401  (the fixture)

webdriver = pytest.importorskip("selenium.webdriver")


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("no chromium and chromedriver (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1000,700"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def _wait(driver, condition, seconds=60):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, seconds, poll_frequency=0.05).until(lambda d: condition(d))


def _type_and_send(driver, text):
    box = driver.find_element("id", "message")
    box.send_keys(text)
    driver.find_element("id", "send").click()


def _set(driver, field, value):
    box = driver.find_element("id", field)
    box.clear()
    box.send_keys(value)


def _send_and_wait(driver, text):
    """Send ``text`` and wait for the page to have streamed its reply."""
    _type_and_send(driver, text)
    _wait(driver, lambda d: d.find_element("tag name", "body").get_attribute("data-state")
          == "idle" and d.find_elements("css selector", ".assistant"))


def test_the_chat_page_streams_a_reply_and_keeps_the_conversation(server, browser,  # noqa: F811
                                                                    tmp_path):
    url, model, tokenizer, _ = server
    browser.get(url + "/")
    _wait(browser, lambda d: d.find_element("id", "model").text == "tiny-llama")
    _set(browser, "temperature", "0")             # greedy: the text is known
    _set(browser, "max-tokens", "12")

    _send_and_wait(browser, "Name a colour.")
    shown = browser.find_elements("css selector", ".assistant")[-1].text
    messages = [{"role": "user", "content": "Name a colour."}]
    ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True))
    expected = _greedy(model, tokenizer, ids, 12, chat=True)[0]
    assert shown == expected.strip() or shown == expected
    assert browser.find_elements("css selector", ".user")[0].text == "Name a colour."

    # a second turn: the whole conversation goes to the server
    _type_and_send(browser, "Another one.")
    _wait(browser, lambda d: len(d.find_elements("css selector", ".assistant")) == 2
          and d.find_element("tag name", "body").get_attribute("data-state") == "idle")
    messages += [{"role": "assistant", "content": expected},
                 {"role": "user", "content": "Another one."}]
    ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True))
    second = _greedy(model, tokenizer, ids, 12, chat=True)[0]
    assert browser.find_elements("css selector", ".assistant")[-1].text in (second,
                                                                           second.strip())
    path = tmp_path / "chat.png"
    assert browser.save_screenshot(str(path)) and path.read_bytes()[:4] == b"\x89PNG"


def test_stop_ends_a_reply(server, browser):  # noqa: F811
    url = server[0]
    browser.get(url + "/")
    _wait(browser, lambda d: d.find_element("id", "model").text == "tiny-llama")
    _set(browser, "max-tokens", "100000")          # would run to the context's end
    _type_and_send(browser, "Tell me a long story.")
    _wait(browser, lambda d: d.find_elements("css selector", ".assistant")
          and d.find_elements("css selector", ".assistant")[-1].text)
    browser.find_element("id", "stop").click()
    _wait(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-state")
          == "idle", seconds=10)
    engine = server[3].state.engine
    _wait(browser, lambda d: engine.running == 0, seconds=10)     # its slot is free


def test_a_server_with_an_api_key_has_the_page_ask_for_it(server, browser):  # noqa: F811
    """gradient serve --api-key: the page's first request gets a 401, it asks its user for
    the key once (a prompt dialog) and sends it from then on."""
    from gradient.serve import create_app

    from .test_server import MODEL, _serving
    _, model, tokenizer, _ = server
    with _serving(create_app(model, tokenizer, MODEL, api_key="s3cret")) as url:
        browser.get(url + "/")
        _wait(browser, lambda d: _alert(d) is not None, seconds=20)
        _alert(browser).send_keys("s3cret")
        _alert(browser).accept()
        _wait(browser, lambda d: d.find_element("id", "model").text == MODEL)
        _set(browser, "max-tokens", "4")
        _send_and_wait(browser, "Name a colour.")
        assert "API key" not in browser.find_elements("css selector", ".assistant")[-1].text
        browser.execute_script("sessionStorage.clear()")


def _alert(driver):
    from selenium.common.exceptions import NoAlertPresentException
    try:
        return driver.switch_to.alert
    except NoAlertPresentException:
        return None


def test_a_reply_the_server_ends_says_why(server, browser, monkeypatch):  # noqa: F811
    """A stream that ends with an error event (a stopping server's, a failed generation's)
    shows the error's message after the text that came, not a script error."""
    import time
    url, engine = server[0], server[3].state.engine
    step, broken = engine.scheduler._step, []

    def slow_then_broken():          # steps slow enough to see text come, then one fails
        if broken:
            raise RuntimeError("the model broke down")
        time.sleep(0.05)
        step()
    monkeypatch.setattr(engine.scheduler, "_step", slow_then_broken)
    browser.get(url + "/")
    _wait(browser, lambda d: d.find_element("id", "model").text == "tiny-llama")
    _set(browser, "max-tokens", "100000")
    _type_and_send(browser, "Tell me a long story.")
    _wait(browser, lambda d: d.find_elements("css selector", ".assistant")
          and d.find_elements("css selector", ".assistant")[-1].text)
    broken.append(True)
    _wait(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-state")
          == "idle", seconds=10)
    monkeypatch.undo()
    reply = browser.find_elements("css selector", ".turn")[-1]
    assert "error" in reply.get_attribute("class")
    assert reply.text.endswith("Error: the model broke down"), reply.text
