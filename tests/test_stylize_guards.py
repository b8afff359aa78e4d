"""``adain stylize``: outputs never lost, clashing or overwritten silently; checks before the work.

Small random images and random MobileNetV2 networks keep every run to about a second.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import adain.stylize_cli
from adain.cli import main
from adain.decoders import build_decoder

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def decoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "decoder.pth"
    torch.save(build_decoder("mobilenet_v2").state_dict(), path)
    return path


def _image(path: Path, size: tuple[int, int] = (48, 64), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def _run(decoder_file: Path, content: Path, styles: list[Path], output: Path, *extra: str) -> int:
    style_args = [a for s in styles for a in ("--style", str(s))]
    return main(
        [
            "stylize",
            "--content",
            str(content),
            *style_args,
            "--output",
            str(output),
            "--content-size",
            "64",
            "--style-size",
            "64",
            "--encoder",
            "mobilenet_v2",
            "--decoder",
            str(decoder_file),
            "--random-encoder",
            "--device",
            "cpu",
            *extra,
        ]
    )


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def clashing(tmp_path: Path) -> tuple[Path, Path]:
    """Contents a/photo.jpg, b/photo.jpg, x.png, x.jpg; styles art.png, art.jpg (all stems clash)."""
    contents, styles = tmp_path / "contents", tmp_path / "styles"
    for i, name in enumerate(("a/photo.jpg", "b/photo.jpg", "x.png", "x.jpg")):
        _image(contents / name, seed=i)
    _image(styles / "art.png", seed=10)
    _image(styles / "art.jpg", seed=11)
    return contents, styles


def test_same_stem_inputs_get_distinct_outputs(decoder_file, clashing, tmp_path, capsys) -> None:
    contents, styles = clashing
    out = tmp_path / "out"
    assert _run(decoder_file, contents, [styles], out) == 0
    assert _files(out) == [
        f"{c}_stylized_{s}.jpg"
        for c in ("a/photo", "b/photo", "x.jpg", "x.png")
        for s in ("art.jpg", "art.png")
    ]
    assert "8 of 8 image(s) written" in capsys.readouterr().err


def test_existing_outputs_are_refused_skipped_or_overwritten(decoder_file, tmp_path, capsys) -> None:
    content, style = _image(tmp_path / "in" / "c.jpg"), _image(tmp_path / "in2" / "s.jpg", seed=1)
    out = tmp_path / "out"
    assert _run(decoder_file, content, [style], out) == 0
    result = out / "c_stylized_s.jpg"
    result.write_bytes(b"keep me")
    capsys.readouterr()
    assert _run(decoder_file, content, [style], out) == 2
    err = capsys.readouterr().err
    assert "1 output file(s) already exist" in err and str(result) in err and "--overwrite" in err
    assert result.read_bytes() == b"keep me"
    assert _run(decoder_file, content, [style], out, "--skip-existing") == 0
    assert result.read_bytes() == b"keep me"
    assert "0 of 1 image(s) written" in capsys.readouterr().err
    assert _run(decoder_file, content, [style], out, "--overwrite") == 0
    assert result.read_bytes() != b"keep me"


def test_output_folder_is_never_read_as_input(decoder_file, tmp_path, capsys) -> None:
    contents = tmp_path / "photos"
    _image(contents / "c.jpg")
    style = _image(tmp_path / "s.jpg", seed=1)
    assert _run(decoder_file, contents, [style], contents / "out") == 0
    assert _run(decoder_file, contents, [style], contents / "out", "--skip-existing") == 0
    assert _files(contents) == ["c.jpg", "out/c_stylized_s.jpg"]  # not out/c_stylized_s_stylized_s.jpg
    capsys.readouterr()
    assert _run(decoder_file, contents, [style], contents) == 2
    assert "inside the --content folder" in capsys.readouterr().err


@pytest.mark.parametrize("make", ["file", "read-only"])
def test_bad_output_folder_is_a_usage_error_before_the_work(
    decoder_file, tmp_path, monkeypatch, capsys, make
) -> None:
    out = tmp_path / "out"
    if make == "file":
        out.write_text("not a folder")
    else:
        out.mkdir()

        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr("tempfile.TemporaryFile", read_only)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output folder was checked")

    monkeypatch.setattr(adain.stylize_cli, "_model", no_model)
    content, style = _image(tmp_path / "c.jpg"), _image(tmp_path / "s.jpg", seed=1)
    assert _run(decoder_file, content, [style], out) == 2
    err = capsys.readouterr().err
    assert f"--output {out}" in err and "Traceback" not in err


@pytest.mark.parametrize("weights", ["0,0", "nan,1", "1,inf"])
def test_bad_style_weights_fail_once_up_front(decoder_file, tmp_path, monkeypatch, capsys, weights) -> None:
    monkeypatch.setattr(adain.stylize_cli, "_model", lambda *a: pytest.fail("model loaded"))
    contents = tmp_path / "contents"
    for i in range(3):
        _image(contents / f"c{i}.jpg", seed=i)
    styles = [_image(tmp_path / "a.jpg", seed=5), _image(tmp_path / "b.jpg", seed=6)]
    assert _run(decoder_file, contents, styles, tmp_path / "out", "--style-weights", weights) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "--style-weights" in err


def test_style_paths_may_contain_commas(decoder_file, tmp_path, capsys) -> None:
    content = _image(tmp_path / "c.jpg")
    a, b = _image(tmp_path / "x,y.jpg", seed=1), _image(tmp_path / "z.jpg", seed=2)
    out = tmp_path / "out"
    assert _run(decoder_file, content, [a], out) == 0
    assert _run(decoder_file, content, [a, b], out, "--style-weights", "1,3") == 0
    assert _files(out) == ["c_stylized_x,y+z.jpg", "c_stylized_x,y.jpg"]
    capsys.readouterr()
    assert _run(decoder_file, content, [Path(f"{a},{b}")], out) == 2
    err = capsys.readouterr().err
    assert f"--style {a},{b} does not exist" in err and "--style a.jpg --style b.jpg" in err


@pytest.mark.parametrize("exc", ["disk full", "interrupt"])
def test_a_failed_save_leaves_no_file_and_a_full_disk_stops(
    decoder_file, tmp_path, monkeypatch, capsys, exc
) -> None:
    contents = tmp_path / "contents"
    for i in range(3):
        _image(contents / f"c{i}.jpg", seed=i)
    style = _image(tmp_path / "s.jpg", seed=9)
    calls = []

    def failing_save(self, fp, *args, **kwargs):
        calls.append(1)
        fp.write(b"\xff\xd8\xff")  # a JPEG cut short
        if exc == "interrupt":
            raise KeyboardInterrupt
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    out = tmp_path / "out"
    code = _run(decoder_file, contents, [style], out)
    err = capsys.readouterr().err
    assert list(out.iterdir()) == [] if out.exists() else True
    assert len(calls) == 1  # the run stops at the first write that cannot succeed
    assert "Traceback" not in err
    if exc == "interrupt":
        assert code == 130
    else:
        assert code == 1
        assert "No space left on device" in err and "stopped" in err
        assert "0 of 3 image(s) written to" in err and "1 failed" in err and "2 not run" in err


def test_not_enough_memory_is_refused_with_the_size_that_fits(
    decoder_file, tmp_path, monkeypatch, capsys
) -> None:
    content, style = _image(tmp_path / "c.jpg", size=(1000, 1500)), _image(tmp_path / "s.jpg", seed=1)
    monkeypatch.setattr(adain.stylize_cli, "available_memory", lambda device: 200 * 10**6)
    out = tmp_path / "out"
    assert _run(decoder_file, content, [style], out, "--content-size", "0") == 2
    err = capsys.readouterr().err
    # 1.5 MP x 0.35 GB/MP = 0.525 GB > 0.2 GB; 0.2 GB fits 0.57 MP, at 3:2 a shorter side of 617
    assert "not enough memory" in err and "c.jpg (1500×1000, about 0.5 GB)" in err
    assert "--content-size 617 or smaller" in err
    assert not out.exists()
    assert _run(decoder_file, content, [style], out, "--content-size", "600") == 0


def test_explicit_bf16_on_a_cpu_without_it_warns(decoder_file, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("adain.devices.cpu_has_native_bf16", lambda cpuinfo_text=None: False)
    seen = []
    original = adain.stylize_cli._model
    monkeypatch.setattr(
        adain.stylize_cli,
        "_model",
        lambda args, device, precision: seen.append(precision) or original(args, device, precision),
    )
    content, style = _image(tmp_path / "c.jpg"), _image(tmp_path / "s.jpg", seed=1)
    assert _run(decoder_file, content, [style], tmp_path / "o1") == 0
    assert _run(decoder_file, content, [style], tmp_path / "o2", "--precision", "bf16") == 0
    assert seen == ["fp32", "bf16"]
    err = capsys.readouterr().err
    assert err.count("warning: bf16 on a CPU without AMX or AVX512-BF16") == 1 and "9× slower" in err


def test_wording_of_skips_truncation_and_the_summary(decoder_file, tmp_path, capsys) -> None:
    contents = tmp_path / "contents"
    _image(contents / "good.jpg")
    (contents / "notes.txt").write_text("not an image")
    data = _image(tmp_path / "big.png", size=(200, 200)).read_bytes()
    (contents / "cut.png").write_bytes(data[: len(data) // 2])
    styles = [_image(tmp_path / "s1.jpg", seed=1), _image(tmp_path / "s2.jpg", seed=2)]
    code = _run(decoder_file, contents, [styles[0].parent / "s1.jpg"], tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 1
    assert "FAILED skipping" not in err and f"skipping {contents / 'notes.txt'}" in err
    assert err.count(str(contents / "cut.png")) == 1  # named once, not "path: path: truncated"
    assert "1 of 2 image(s) written" in err and "1 failed" in err and "1 file(s) skipped" in err


def test_tiny_style_is_not_rejected_for_the_decoder(decoder_file, tmp_path, capsys) -> None:
    content, style = _image(tmp_path / "c.jpg"), _image(tmp_path / "tiny.png", size=(4, 4))
    assert _run(decoder_file, content, [style], tmp_path / "out", "--style-size", "0") == 0, (
        capsys.readouterr().err
    )


def test_pixel_cap_names_the_cli_option(decoder_file, tmp_path, capsys) -> None:
    content, style = _image(tmp_path / "c.jpg", size=(100, 100)), _image(tmp_path / "s.jpg", seed=1)
    assert _run(decoder_file, content, [style], tmp_path / "out", "--max-pixels", "5000") == 1
    err = capsys.readouterr().err
    assert "more than the limit of 5,000" in err
    assert "--max-pixels" in subprocess_help()


def subprocess_help() -> str:
    from adain.cli import build_parser

    return build_parser("stylize")._subparsers._group_actions[0].choices["stylize"].format_help()


def test_decompression_bomb_warning_does_not_leak(tmp_path, monkeypatch) -> None:
    import warnings

    from adain.io import list_images, load_image

    path = _image(tmp_path / "wide.png", size=(40, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 pixels: Pillow warns (errors above 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(path).shape == (3, 40, 40)
        assert list_images(tmp_path) == [path]


def test_adain_help_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom adain.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert "stylize" in proc.stdout and "train" in proc.stdout
    assert proc.stdout.strip().endswith("NO TORCH")


def test_subcommand_help_read_from_source_matches_the_modules() -> None:
    import importlib

    from adain.cli import SUBCOMMANDS, subcommand_help

    for name, module in SUBCOMMANDS.items():
        assert subcommand_help(name) == importlib.import_module(module).HELP != ""
