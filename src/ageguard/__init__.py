"""AgeGuard: self-hosted age estimation and face anti-spoofing, Yoti AI Services compatible."""

__version__ = "0.1.0"
