"""The console end to end, in headless Chromium driven by Selenium, against a real
`rekollect serve`: create a collection, index photos, create a user, associate faces
by clicking them, disassociate one, search by photo; also at a phone's width.

Screenshots of each step go to test-artifacts/console/ at the repository root.
Needs Debian's `chromium` and `chromium-driver` and the `selenium` package, and the
photos of ../shared/datasets/face-recognition-examples; skips, saying which is
missing, without them. Selenium never downloads anything: the driver is named.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rekollect.storage.database import sqlite_url
from tests.conftest import running_server, serve_args
from tests.test_sigv4 import make_key

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "console"
PHOTOS = ROOT.parent / "shared" / "datasets" / "face-recognition-examples"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT_S = 120

if not PHOTOS.is_dir():
    pytest.skip(f"face photos not found at {PHOTOS}", allow_module_level=True)
for _path, _package in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]:
    if not _path.exists():
        pytest.skip(
            f"{_path} not found (apt-get install chromium chromium-driver)",
            allow_module_level=True,
        )
pytest.importorskip("selenium", reason="the browser tests need selenium")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service as ChromeService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as shown  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def photos_of(identity: str) -> list[Path]:
    """The photos LABELS.csv says show `identity`, in file name order."""
    with (PHOTOS / "LABELS.csv").open(newline="") as lines:
        rows = list(csv.DictReader(lines))
    return sorted(PHOTOS / r["file"] for r in rows if r["identity"] == identity)


@pytest.fixture(scope="module")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The console of a keyless `rekollect serve` on loopback (open, as it says)."""
    data = tmp_path_factory.mktemp("console-e2e")
    command = serve_args(data, sqlite_url(data), "--engine-workers", "1")
    env = {**os.environ, "REKOLLECT_MASTER_KEY_FILE": str(data / "master.key")}
    with running_server(command, data / "server.log", env=env) as url:
        yield f"{url}/console/"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=ChromeService(executable_path=str(CHROMEDRIVER)), options=options
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait_for(driver: WebDriver, css: str, text: str = "") -> WebElement:
    """The first element matching `css` (and showing `text`), once it appears."""
    condition: Any = (
        shown.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
        if text
        else shown.presence_of_element_located((By.CSS_SELECTOR, css))
    )
    WebDriverWait(driver, WAIT_S).until(condition)
    return driver.find_element(By.CSS_SELECTOR, css)


def click(driver: WebDriver, element: WebElement) -> None:
    """Scroll `element` clear of the selection bar, then click it."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page at the window's width, as test-artifacts/console/NAME.png."""
    width = driver.get_window_size()["width"]
    height = driver.get_window_size()["height"]
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(int(full) + 120, height), 4000))
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(width, height)
    assert path.stat().st_size > 10_000
    return path


def messages(driver: WebDriver) -> list[str]:
    return [m.text for m in driver.find_elements(By.CSS_SELECTOR, ".message")]


def test_a_person_files_and_finds_faces_in_the_browser(browser, console_url):
    driver = browser
    obama = photos_of("barack_obama")
    enrolled = [p for p in obama if "__train__" in p.name]
    probe = PHOTOS / "examples__obama-480p.jpg"
    others = photos_of("joe_biden")[:1] + photos_of("kit_harington")[:1]
    assert len(enrolled) == 2 and probe in obama

    # 1. The collections page of an open (keyless, loopback) console.
    driver.get(console_url)
    assert "needs no sign-in" in wait_for(driver, "#open-console").text
    screenshot(driver, "01-collections")

    # 2. A new collection.
    driver.find_element(By.NAME, "collection_id").send_keys("people")
    click(driver, driver.find_element(By.ID, "create-collection"))
    wait_for(driver, ".message.ok", "Collection people created.")
    assert driver.find_element(By.TAG_NAME, "h1").text == "people"
    screenshot(driver, "02-collection-created")

    # 3. Photos indexed (chosen with the file input; dropping fills the same one).
    paths = "\n".join(str(p) for p in enrolled + others)
    driver.find_element(By.ID, "index-photos").send_keys(paths)
    click(driver, driver.find_element(By.ID, "index-button"))
    wait_for(driver, ".message.ok", "indexed 1 face")
    said = messages(driver)
    assert said == [f"{p.name}: indexed 1 face." for p in enrolled + others], said
    assert driver.find_element(By.ID, "faces-total").text == "4"
    screenshot(driver, "03-photos-indexed")

    # 4. A user.
    driver.find_element(By.ID, "new-user-id").send_keys("barack_obama")
    click(driver, driver.find_element(By.ID, "create-user"))
    wait_for(driver, ".message.ok", "User barack_obama created.")
    screenshot(driver, "04-user-created")

    # 5. His two faces selected by clicking their thumbnails, then added to him.
    for path in enrolled:
        tile = f'#faces label.tile[data-external="{path.name}"] img'
        click(driver, driver.find_element(By.CSS_SELECTOR, tile))
    assert driver.find_element(By.ID, "selected-count").text == "2 faces selected"
    user_card = 'article.user[data-user="barack_obama"]'
    click(driver, driver.find_element(By.CSS_SELECTOR, f"{user_card} button.add-to"))
    wait_for(driver, ".message.ok", "Associated 2 faces with user barack_obama.")
    owned = driver.find_elements(By.CSS_SELECTOR, f"{user_card} label.tile")
    assert sorted(t.get_attribute("data-external") for t in owned) == sorted(
        p.name for p in enrolled
    )
    assert driver.find_element(By.ID, "faces-total").text == "2"
    screenshot(driver, "05-faces-associated")

    # 6. One of them taken away again.
    click(driver, driver.find_element(By.CSS_SELECTOR, f"{user_card} label.tile img"))
    click(driver, driver.find_element(By.ID, "disassociate-button"))
    wait_for(driver, ".message.ok", "Disassociated 1 face from barack_obama.")
    assert len(driver.find_elements(By.CSS_SELECTOR, f"{user_card} label.tile")) == 1
    assert driver.find_element(By.ID, "faces-total").text == "3"
    screenshot(driver, "06-face-disassociated")

    # 7. Search with a photo of him that was never indexed.
    driver.find_element(By.ID, "search-photo").send_keys(str(probe))
    click(driver, driver.find_element(By.ID, "search-button"))
    match = wait_for(driver, "#user-matches article.match")
    assert match.get_attribute("data-user") == "barack_obama"
    similarity = match.find_element(By.CLASS_NAME, "similarity").text
    assert float(similarity.split("%")[0]) >= 80
    users = driver.find_elements(By.CSS_SELECTOR, "#user-matches article.match")
    assert len(users) == 1
    faces = driver.find_elements(By.CSS_SELECTOR, "#face-matches .tile")
    assert {f.get_attribute("data-external") for f in faces} <= {
        p.name for p in enrolled
    }
    assert len(faces) == 2
    screenshot(driver, "07-search-results")

    # 8. The same pages at a phone's width: nothing wider than the screen.
    driver.set_window_size(*PHONE)
    screenshot(driver, "08-phone-search-results")
    driver.get(console_url + "c/people?show=all")
    wait_for(driver, "#faces")
    assert_fits(driver)
    screenshot(driver, "09-phone-collection")
    driver.get(console_url)
    wait_for(driver, "table.collections")
    assert_fits(driver)
    screenshot(driver, "10-phone-collections")
    driver.set_window_size(*DESKTOP)


def assert_fits(driver: WebDriver) -> None:
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


def test_with_keys_the_console_asks_to_sign_in_first(browser, tmp_path):
    master = tmp_path / "master.key"
    key = make_key(tmp_path, master, account_id="123456789012", user_name="dora")
    command = serve_args(tmp_path, sqlite_url(tmp_path))
    env = {**os.environ, "REKOLLECT_MASTER_KEY_FILE": str(master)}
    with running_server(command, tmp_path / "server.log", env=env) as url:
        driver = browser
        driver.get(f"{url}/console/")
        wait_for(driver, "input[name=access_key_id]")
        assert not driver.find_elements(By.ID, "open-console")
        driver.find_element(By.NAME, "access_key_id").send_keys(key.key.access_key_id)
        driver.find_element(By.NAME, "secret").send_keys("a wrong secret")
        click(driver, driver.find_element(By.CSS_SELECTOR, "button.primary"))
        wait_for(driver, ".message.error", "not right")
        screenshot(driver, "11-sign-in-refused")

        driver.find_element(By.NAME, "secret").send_keys(key.secret)
        click(driver, driver.find_element(By.CSS_SELECTOR, "button.primary"))
        who = wait_for(driver, ".topbar .who", "dora")
        assert key.key.access_key_id in who.text and "123456789012" in who.text
        wait_for(driver, "h1", "Collections")
        screenshot(driver, "12-signed-in")
