"""The embedded llama.cpp miner behind the gateway, through the openai client and through the chat
page in a real headless Chromium (Debian's chromium + chromium-driver; `make test` installs them)."""

from __future__ import annotations


import pytest


@pytest.fixture(scope="module")
def gw(subnet):
    # Signed as the staked validator: LLM miners serve only validators (README "Where we differ").
    return subnet.start_gateway("llm", ["llm"], "--gateway.first_chunk_timeout", "20", "--gateway.log_content",
                                "--wallet.name", "val")


@pytest.fixture(scope="module")
def key(gw):
    return gw.key("carol")


def test_real_model_streams_through_the_openai_client(gw, key, subnet):
    stream = gw.client(key).chat.completions.create(
        model="sn1", messages=[{"role": "user", "content": "Name three colours."}], stream=True, max_tokens=16)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 2 and "".join(pieces).strip()
    # --gateway.log_content: the record keeps the prompt and the answer as relayed.
    import sqlite3
    import time

    deadline = time.monotonic() + 5
    while not (rows := sqlite3.connect(gw.path / "gateway.db").execute(
            "SELECT key_name, uid, status, tokens, prompt, answer FROM records").fetchall()):
        assert time.monotonic() < deadline, "no record written"
        time.sleep(0.1)
    name, uid, status, tokens, prompt, answer = rows[-1]
    assert (name, uid, status) == ("carol", subnet.miners["llm"].uid, "ok")
    assert "Name three colours." in prompt and answer == "".join(pieces) and 0 < tokens <= 16


@pytest.fixture
def browser():
    from sn1.testing import headless_chromium

    b = headless_chromium(900, 700)
    if b is None:
        pytest.skip("chromium and chromium-driver are not installed (`make test` installs them)")
    yield b
    b.quit()


def test_chat_page_streams_an_answer(gw, key, subnet, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(gw.url + "/")
    assert browser.title == "SN1 chat"
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "prompt").send_keys("Write one sentence about the sea.")
    # Record every text the answer shows while it grows: tokens must arrive in several steps.
    browser.execute_script("""
        window.seen = [];
        new MutationObserver(() => {
            const a = document.querySelector('.assistant');
            if (a && a.textContent !== window.seen[window.seen.length - 1]) window.seen.push(a.textContent);
        }).observe(document.getElementById('log'), {childList: true, subtree: true, characterData: true});
    """)
    browser.find_element(By.ID, "send").click()
    meta = WebDriverWait(browser, 60).until(
        lambda b: next((e for e in b.find_elements(By.CSS_SELECTOR, ".meta[data-uid]")), None))
    assert meta.get_attribute("data-uid") == str(subnet.miners["llm"].uid)
    assert f"miner uid {subnet.miners['llm'].uid}" in meta.text and "time to first token" in meta.text
    answer = browser.find_element(By.CSS_SELECTOR, ".assistant").text
    seen = browser.execute_script("return window.seen")
    assert answer.strip() and not browser.find_elements(By.CSS_SELECTOR, ".error")
    growing = [s for s in seen if s]
    assert len(growing) >= 2 and all(b.startswith(a) for a, b in zip(growing, growing[1:])), seen
    shot = tmp_path / "chat-page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 5000
    print(f"screenshot: {shot}")


def test_chat_page_shows_a_bad_key(gw, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(gw.url + "/")
    browser.find_element(By.ID, "key").send_keys("sn1-wrong")
    browser.find_element(By.ID, "prompt").send_keys("hello")
    browser.find_element(By.ID, "send").click()
    err = WebDriverWait(browser, 20).until(lambda b: next(iter(b.find_elements(By.CSS_SELECTOR, ".error")), None))
    assert "invalid or revoked API key" in err.text
    # where a key comes from, on the page and in the error; the question is kept
    assert "sn1 gateway keys create" in err.text
    assert browser.find_element(By.ID, "prompt").get_attribute("value") == "hello"
    assert "sn1 gateway keys create --name" in browser.find_element(By.ID, "keyhelp").text


def test_chat_page_keeps_the_prompt_when_no_miner_answers(subnet, browser, tmp_path):
    """Issue 20, item 8: an error leaves no empty bubble and loses nothing the user typed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    gw = subnet.start_gateway("nobody", ["dead"], "--gateway.first_chunk_timeout", "2")
    key = gw.key("dave")
    browser.get(gw.url + "/")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "prompt").send_keys("Please keep this question.")
    browser.find_element(By.ID, "send").click()
    err = WebDriverWait(browser, 60).until(lambda b: next(iter(b.find_elements(By.CSS_SELECTOR, ".error")), None))
    assert err.text.startswith("Error: no miner could answer (1 tried): uid "), err.text
    assert err.text.endswith("(your message is back in the box: press Send to try again)"), err.text
    assert browser.find_element(By.ID, "prompt").get_attribute("value") == "Please keep this question."
    assert not browser.find_elements(By.CSS_SELECTOR, ".assistant")     # no empty bubble
    assert not browser.find_elements(By.CSS_SELECTOR, ".user")
    assert not [m for m in browser.find_elements(By.CSS_SELECTOR, "#log .meta") if m.text]
    shot = tmp_path / "chat-error.png"
    assert browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
