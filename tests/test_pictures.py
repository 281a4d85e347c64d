"""The README's pictures: made by ``scripts/demo --pictures`` from the real stack, and current.

One run of the generator (the demo source, the agent's pass, ``appliance web`` on a socket,
headless Chromium, the indicator on luma's dummy display) feeds the picture tests; the
wiring diagram is checked against the config it is drawn from.
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageChops

from appliance.config import load
from appliance.config.settings import SECTIONS
from appliance.demo import pictures
from appliance.demo.browser import BrowserError, find
from appliance.demo.wiring import default_indicator, wiring_svg
from appliance.errors import ApplianceError
from appliance.indicator.frame import render_frame

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
CSS = ROOT / "appliance" / "web" / "static" / "style.css"
SVG = "{http://www.w3.org/2000/svg}"


def _chromium() -> bool:
    try:
        find()
    except BrowserError:
        return False
    return True


needs_chromium = pytest.mark.skipif(
    not _chromium(),
    reason="chromium is not installed (scripts/test installs Debian's chromium when run as root)",
)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, list[str]]:
    """Run the generator once into a fresh folder; return it and what it said."""
    folder = tmp_path_factory.mktemp("pictures")
    said: list[str] = []
    pictures.make_pictures(folder, said.append)
    return folder, said


@needs_chromium
def test_pictures_makes_every_picture_and_nothing_else(made):
    folder, _ = made
    assert sorted(p.name for p in folder.iterdir()) == pictures.PICTURES


@needs_chromium
def test_pictures_are_valid_and_of_their_size(made):
    folder, _ = made
    for name in pictures.PICTURES:
        if name.endswith(".svg"):
            root = ET.parse(folder / name).getroot()
            assert root.tag == f"{SVG}svg" and int(root.get("width", "0")) > 0, name
            continue
        with Image.open(folder / name) as image:
            image.verify()  # a whole, valid PNG
        with Image.open(folder / name) as image:
            width, height = image.size
        if name.endswith("-desktop.png"):  # the whole page at 1280 CSS px, pixel ratio 1
            assert width == 1280 and height >= 900, name
        elif name.endswith("-phone.png"):  # the first screenful of a 390 px phone, ratio 2
            assert (width, height) == (390 * 2, 844 * 2), name
        else:
            assert name.startswith("oled-") and (width, height) == (512, 256), name


def _css_colour(state: str) -> tuple[int, int, int]:
    hexa = re.search(rf"--{state}: #([0-9a-f]{{6}})", CSS.read_text()).group(1)
    return tuple(int(hexa[i : i + 2], 16) for i in (0, 2, 4))


@needs_chromium
@pytest.mark.parametrize("name", pictures.STATES)
def test_pictures_show_the_page_in_its_state(made, name):
    folder, said = made
    state = "ok" if name == "recovered" else name
    want = _css_colour(state)
    # A point of the banner right of its big word, on a desktop and on a phone.
    for screen, point in (("desktop", (1160, 75)), ("phone", (720, 200))):
        with Image.open(folder / f"page-{name}-{screen}.png") as image:
            got = image.convert("RGB").getpixel(point)
        assert all(abs(g - w) <= 8 for g, w in zip(got, want, strict=True)), (name, screen, got, want)
    line = next(s for s in said if s.startswith(f"pictures: {name}: "))
    expected = {
        "ok": "All 4 tables are up to date",
        "lagging": "behind (more than warn_lag",
        "outage": "Database unreachable",
        "recovered": "All 4 tables are up to date",
        "drift": 'column "price"',
        "maintenance": "Planned maintenance",
    }
    assert expected[name] in line


def _frame_top(state: str) -> Image.Image:
    """Return the big state word as the indicator draws it, 4x: the top 15 rows of a frame."""
    status = {"state": state, "tables": [{"name": "public.orders", "last_sync": "2025-01-01T00:00:00Z"}]}
    top = render_frame(status, "127.0.0.1:8080").convert("L").crop((0, 0, 128, 15))
    return top.resize((128 * 4, 15 * 4), Image.Resampling.NEAREST).point(lambda v: 255 if v else 0)


@needs_chromium
def test_pictures_oled_frames_are_the_indicators(made):
    folder, _ = made
    frames = {}
    for name in pictures.OLED_FRAMES:
        with Image.open(folder / f"oled-{name}.png") as image:
            frames[name] = image.convert("L")
    for state in ("ok", "lagging", "outage", "drift", "maintenance"):
        top = frames[state].crop((0, 0, 512, 60))
        assert ImageChops.difference(top, _frame_top(state)).getbbox() is None, state
    ok, dimmed, shifted = frames["ok"], frames["ok-dimmed"], frames["ok-shifted"]
    # Dimmed: the same picture, lit less brightly.
    assert ok.getextrema() == (0, 255) and 0 < dimmed.getextrema()[1] < 255
    assert (
        ImageChops.difference(
            ok.point(lambda v: 255 if v else 0), dimmed.point(lambda v: 255 if v else 0)
        ).getbbox()
        is None
    )
    # Shifted: the same picture moved one pixel (4 at 4x) right and down, nothing cut off.
    assert ImageChops.difference(ok.crop((0, 0, 508, 252)), shifted.crop((4, 4, 512, 256))).getbbox() is None
    assert ImageChops.difference(ok, shifted).getbbox() is not None


def _config(tmp_path: Path, indicator: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(
        f'[appliance]\nstate_dir = "{tmp_path / "state"}"\n'
        '[source]\nhost = "db"\ndatabase = "sales"\nuser = "ro"\n'
        f"[indicator]\n{indicator}\n"
        '[[tables]]\nname = "public.orders"\n'
    )
    return path


def _label_fill(svg: str, label: str) -> str:
    """Return the text colour of a pin's label: dark when the pin is used, grey when not."""
    texts = ET.fromstring(svg).iter(f"{SVG}text")
    return next(t.get("fill") for t in texts if t.text == label)


def test_pictures_wiring_is_drawn_from_the_config_defaults():
    svg = wiring_svg(default_indicator())
    for setting in SECTIONS["indicator"]:
        if setting.kind == "pin":
            assert f"{setting.name} = {setting.default}" in svg  # the caption names the key
            bcm = setting.default
            assert _label_fill(svg, f"GPIO{bcm} (BCM {bcm})") == "#111111", setting.name


def test_pictures_wiring_follows_a_changed_pin(tmp_path):
    default = wiring_svg(default_indicator())
    moved = wiring_svg(load(_config(tmp_path, "red = 5"), environ={}).indicator)
    assert moved != default
    assert "red LED: red = 5" in moved and "red LED: red = 17" not in moved
    assert _label_fill(moved, "GPIO5 (BCM 5)") == "#111111"  # pin 29 now wired
    assert _label_fill(default, "GPIO5 (BCM 5)") == "#888888"
    assert _label_fill(moved, "GPIO17 (BCM 17)") == "#888888"  # and pin 11 free


def test_pictures_wiring_without_oled_and_on_another_bus(tmp_path):
    none = wiring_svg(load(_config(tmp_path, 'oled = "none"'), environ={}).indicator)
    assert "OLED" not in none and "OLED SSD1306" in wiring_svg(default_indicator())
    assert _label_fill(none, "GPIO2 SDA1 (BCM 2)") == "#888888"
    with pytest.raises(ApplianceError, match="i2c_port = 0"):
        wiring_svg(load(_config(tmp_path, "i2c_port = 0"), environ={}).indicator)


def test_pictures_committed_wiring_is_current():
    committed = pictures.FOLDER / "wiring.svg"
    fresh = wiring_svg(default_indicator())
    if os.environ.get("UPDATE_PICTURES") == "1":
        assert os.environ.get("CI") != "true", "never rewrite the pictures under CI"
        committed.write_text(fresh)
        pytest.fail(f"{committed} rewritten: look at it and commit it")
    assert committed.read_text() == fresh, (
        "the committed wiring diagram is out of date: run scripts/demo --pictures "
        "(or UPDATE_PICTURES=1 scripts/test tests/test_pictures.py for the diagram alone)"
    )


def test_pictures_committed_folder_holds_exactly_the_pictures():
    assert sorted(p.name for p in pictures.FOLDER.iterdir()) == pictures.PICTURES


def _image_links(text: str) -> list[str]:
    markdown = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text)
    html = re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", text)
    return [link for link in markdown + html if not re.match(r"[a-z]+:", link)]


def _ignored(path: str) -> bool:
    """Return whether git ignores ``path`` (it then never reaches the repository)."""
    result = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path], check=False)
    return result.returncode == 0


def test_pictures_every_readme_image_is_a_committed_file():
    links = _image_links(README.read_text())
    assert links, "the README shows no pictures"
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert missing == []
    ignored = [link for link in links if _ignored(link)]
    assert ignored == [], "these README pictures are in git-ignored folders, so GitHub never shows them"
    ours = [Path(link).name for link in links if Path(link).parent == Path("appliance/demo/pictures")]
    assert set(ours) <= set(pictures.PICTURES)


def test_pictures_without_chromium_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = CliRunner().invoke(pictures.main, [str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "need Chromium" in result.output and "apt-get install chromium" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
