"""adain: encoder-AdaIN-decoder arbitrary style transfer (Huang & Belongie, ICCV 2017)."""

__version__ = "0.1.0"
