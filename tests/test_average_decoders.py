"""experiments.average_decoders: the uniform average of several decoders of one encoder, as a model file."""

from __future__ import annotations

from pathlib import Path

import torch

from adain.decoders import build_decoder
from adain.modelfile import read_model_file, save_model_file
from experiments import average_decoders


def _model_file(path: Path, seed: int, encoder: str = "mobilenet_v2", iteration: int = 0) -> Path:
    torch.manual_seed(seed)
    decoder = build_decoder(encoder)
    return save_model_file(path, decoder, encoder_name=encoder, config={"trained_iterations": iteration})


def test_average_is_the_mean_of_the_inputs_and_records_them(tmp_path: Path) -> None:
    paths = [_model_file(tmp_path / f"m{i}.pth", seed=i, iteration=100 * i) for i in range(3)]
    out = tmp_path / "avg.pth"
    assert average_decoders.main([*map(str, paths), "--output", str(out)]) == 0
    averaged = read_model_file(out)
    states = [read_model_file(p).decoder_state for p in paths]
    for key, value in averaged.decoder_state.items():
        torch.testing.assert_close(value, sum(s[key] for s in states) / 3)
    assert averaged.encoder_name == "mobilenet_v2"
    assert [s["iteration"] for s in averaged.config["averaged_from"]] == [0, 100, 200]


def test_a_repeated_input_counts_with_its_multiplicity(tmp_path: Path) -> None:
    a, b = (_model_file(tmp_path / f"{n}.pth", seed=i) for i, n in enumerate("ab"))
    same, weighted = tmp_path / "same.pth", tmp_path / "weighted.pth"
    assert average_decoders.main([str(a), str(a), "--output", str(same)]) == 0
    assert average_decoders.main([str(a), str(b), str(a), "--output", str(weighted)]) == 0
    sa, sb = read_model_file(a).decoder_state, read_model_file(b).decoder_state
    for key, value in read_model_file(same).decoder_state.items():
        torch.testing.assert_close(value, sa[key])  # the mean of A and A is A, not A / 2
    for key, value in read_model_file(weighted).decoder_state.items():
        torch.testing.assert_close(value, (2 * sa[key] + sb[key]) / 3)


def test_refuses_mismatched_inputs_and_existing_output(tmp_path: Path, capsys) -> None:
    a = _model_file(tmp_path / "a.pth", seed=0)
    b = _model_file(tmp_path / "b.pth", seed=1, encoder="vgg19_caffe_normalised")
    out = tmp_path / "avg.pth"
    assert average_decoders.main([str(a), str(b), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert "b.pth" in err and "vgg19_caffe_normalised" in err and not out.exists()
    assert average_decoders.main([str(a), "--output", str(out)]) == 1
    assert "at least two" in capsys.readouterr().err
    out.write_bytes(b"earlier result")
    assert average_decoders.main([str(a), str(a), "--output", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"earlier result"
    assert average_decoders.main([str(a), str(a), "--output", str(out), "--overwrite"]) == 0
    assert read_model_file(out).encoder_name == "mobilenet_v2"
