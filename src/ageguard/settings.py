"""Every limit, threshold, path and URL of AgeGuard, in one place.

Values come from the environment (prefix ``AGEGUARD_``) with the seeds' figures as defaults.
No other module may hard-code one of these numbers: read it from :func:`get_settings`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Precision = Literal["float32", "int8"]


class ImageLimits(BaseModel):
    """Image requirements at one validation level (the seeds' `normal` values by default).

    Set from the environment through the parent settings, e.g. ``AGEGUARD_NORMAL__MIN_BYTES``.
    """

    model_config = ConfigDict(extra="forbid")

    min_bytes: int = 50_000
    max_bytes: int = 1_500_000
    min_width: int = 300
    max_width: int = 2000
    min_height: int = 300
    max_height: int = 2000
    min_pixels: int = 90_000
    max_pixels: int = 2_100_000
    # Estimated from the quantisation tables (vision/image.py:estimate_jpeg_quality, libjpeg scaling).
    min_jpeg_quality: int = 95
    # --- Face rules (vision/faces.py). Measured with the RetinaFace detector: its box is forehead to chin,
    # without hair or ears, about 2.8 x the inter-ocular distance (IOD) high and 2.2 x IOD wide.
    # Inter-ocular distance in pixels (seed: "the minimum inter ocular distance is 120 pixels"). A face
    # with IOD 120 has a box about 340 px high: 47% of a 1280x720 frame, the seeds' recommended capture.
    min_interocular_px: float = 120.0
    # Face box height over image height. Low bound 0.20: with IOD >= 120 it only bites on tall frames
    # (FullHD portrait, 1080x1920: face < 384 px high, i.e. the person stands well back), so "move closer"
    # has one consistent meaning. High bound 0.75: a centred face at 0.75 still keeps 0.17 box heights
    # free above and below, so a face that is simply too close gets "too close" (ratio) rather than a
    # margin error, and the capture module can aim for the middle of [0.20, 0.75] (about 0.45).
    # At 1280x720 the accepted band is then IOD 120..190 px (box 340..540 px high): a laptop webcam at
    # 40-55 cm, a phone at arm's length in landscape.
    min_face_ratio: float = 0.20
    max_face_ratio: float = 0.75
    # Free space around the face box to each image edge, as a fraction of the box's width (left, right)
    # or height (top, bottom); negative when the box sticks out of the frame. 0.10 keeps the whole face
    # and some of the head in view (the detector box excludes hair and ears) while tolerating faces that
    # are not perfectly centred; the liveness model looks at context around the face.
    min_face_margin: float = 0.10
    # Mean luma (BT.601, 0..255) of the central face region (box minus 20%/15% at the sides/top-bottom).
    # Mean luma mixes skin tone with lighting, so the dark bound is set by dark skin in fair light: on
    # UTKFace the darkest well-lit Black faces sit at 44-55 and the darkest face of all at 40; NUAA
    # webcam frames of real people span 40-229 (the top ones washed out but usable). 40 and 230 reject
    # only faces darker or more blown out than any of those (0.02% of UTKFace, 0.2% of NUAA real).
    min_face_brightness: float = 40.0
    max_face_brightness: float = 230.0


def _low_limits() -> ImageLimits:
    """The relaxed level: size, quality, ratio and margin rules lifted; a face is still required."""
    return ImageLimits(
        min_bytes=0,
        max_bytes=1_500_000,
        min_width=32,
        max_width=4000,
        min_height=32,
        max_height=4000,
        min_pixels=32 * 32,
        max_pixels=16_000_000,
        min_jpeg_quality=0,
        # Still a face the networks can read: UTKFace's 200 px crops have IOD 57-103, and below ~20 px
        # the age models' crops would be upsampled more than 3x.
        min_interocular_px=20.0,
        min_face_ratio=0.0,
        max_face_ratio=10.0,
        min_face_margin=-1.0,
        # Relaxed too (Yoti: "lower the threshold for ... image validation"); UTKFace spans 40-241.
        min_face_brightness=20.0,
        max_face_brightness=245.0,
    )


class CaptureSettings(BaseModel):
    """The capture module's settings (environment: ``AGEGUARD_CAPTURE__<NAME>``)."""

    model_config = ConfigDict(extra="forbid")

    # --- Secure-capture sessions (docs/secure-capture.md).
    # Lifetime of a session a relying party opens; the page must capture and the backend submit within it.
    session_ttl_s: int = 300
    # The most a relying party may ask for (``ttl_s`` in the create request).
    max_session_ttl_s: int = 900
    # Preview frames one session may have checked (10 minutes at 4 frames per second).
    max_frames_per_session: int = 2400
    # Full-resolution (final) checks one session may run: each is one capture attempt.
    max_final_checks: int = 10
    # A secure capture is trusted only after this many preview frames of the session passed every rule
    # (server-side count: the page cannot claim them) ...
    min_good_frames: int = 3
    # ... and only when it is submitted within this many seconds of passing its final check.
    capture_max_age_s: int = 120
    # Accept capture checks without a session token (anyone who can reach the server may then use the
    # face detector through /capture/check). Off by default: the relying party opens a session per page.
    open_check: bool = False

    # --- Guidance loop in the browser.
    # Preview frames are scaled to this width (the detector sees at most 640 px on the long side anyway).
    preview_width: int = 640
    # Largest preview the check endpoint accepts (pixels), so preview checks stay cheap.
    max_preview_pixels: int = 1280 * 720
    # Relative difference allowed between the preview's and the capture's aspect ratios.
    aspect_tolerance: float = 0.03
    # Pause between two preview checks, milliseconds (one check is in flight at a time).
    preview_interval_ms: int = 200
    # Auto-capture once this many consecutive preview frames passed, spanning at least steady_ms ...
    steady_frames: int = 3
    steady_ms: int = 600
    # ... with the face moving less than this share of the frame between two of them.
    steady_motion: float = 0.04
    # JPEG quality of the capture (canvas.toBlob); the server requires an estimated quality of 95+.
    jpeg_quality: float = 0.95

    # --- Demo page (/capture/demo) and CORS.
    # Serve /capture/demo, whose backend signs requests with the embedded local application. Turn off
    # on a server reachable by others: the demo lets anyone estimate ages as the local application.
    demo: bool = True
    # Origins allowed to load the module and call /capture/config and /capture/check from their pages.
    cors_origins: list[str] = ["*"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGEGUARD_", env_nested_delimiter="__", extra="ignore")

    # Paths (SPEC: AGEGUARD_HOME, AGEGUARD_DATABASE_URL, AGEGUARD_MODEL_DIR).
    home: Path = Field(default_factory=lambda: Path(user_data_dir("ageguard")))
    database_url: str | None = None
    model_dir: Path = Field(default_factory=lambda: Path(user_cache_dir("ageguard")) / "models")

    # Image requirements per validation level.
    normal: ImageLimits = Field(default_factory=ImageLimits)
    low: ImageLimits = Field(default_factory=_low_limits)
    # Decoding guard against decompression bombs, whatever the level: the header's declared width x
    # height is checked against this before any pixel is decoded (40 MP = 120 MB of RGB; Pillow: 89 MP).
    max_decoded_pixels: int = 40_000_000
    # Greyscale test (IMAGE_GRAYSCALE_NOT_SUPPORTED), see vision/image.py:is_grayscale. On a subsample of
    # about `grayscale_sample_pixels` pixels whose brightest channel is at least `grayscale_min_level`, the
    # image is greyscale when at most `grayscale_colour_share` of them have max(R,G,B)-min(R,G,B) above
    # `grayscale_max_spread`. Grey saved as RGB JPEG stays within ~3 levels; skin is 20..80 levels apart.
    grayscale_sample_pixels: int = 65_536
    grayscale_min_level: int = 40
    grayscale_max_spread: int = 12
    grayscale_colour_share: float = 0.02

    # Detection.
    detection_score: float = 0.6
    # A second face smaller than this share of the main face's area is background and ignored.
    background_face_area_ratio: float = 0.25

    # Face capture module and secure capture sessions (docs/capture.md, docs/secure-capture.md).
    capture: CaptureSettings = Field(default_factory=CaptureSettings)

    # Age.
    max_st_dev: float = 6.0
    # A folder holding age_head.onnx + age_head.json from `ageguard train age --out`; None: the shipped
    # ensemble (docs/models/age.md says why the trained head is not the default yet).
    age_head_dir: Path | None = None

    # Liveness: a folder holding antispoof.onnx + antispoof.json from `ageguard train antispoof --out`
    # (e.g. retrained with a deployment's own captures, `--extra`); None: the model shipped in the package.
    liveness_model_dir: Path | None = None

    # Arithmetic of the age networks: "float32" (the reference), or "int8" for faceres-deep quantised from
    # committed activation ranges (about 3x faster on a CPU with VNNI; utkface-dev MAE 4.32 against 4.31,
    # docs/performance.md "int8 age network"). Only the shipped ensemble uses it; a trained age head keeps
    # float32, the features it was fitted on.
    network_precision: Precision = "float32"

    # Threads per onnxruntime session (0: onnxruntime's default, all cores). Batch jobs that run one
    # process per core set 1.
    onnx_threads: int = 0

    # Threads that do one request's own pixel work (face-api's and the liveness crops and the quality
    # measures, made while faceres-deep runs), the request's own thread included: 0 one per core, 1 none
    # beside it. Only speed changes, never a result (docs/performance.md, "Spare cores, ...").
    pixel_threads: int = Field(default=0, ge=0)

    # HTTP.
    max_body_bytes: int = 2_621_440  # 2.5 MiB
    queue_size: int = 16
    inference_threads: int = 2
    # Signed requests and replays (docs/api.md, "Timestamps and replays"). An epoch timestamp (seconds or
    # milliseconds) must be within `timestamp_window_s` of now; its nonce is kept `nonce_ttl_s` (at least two
    # windows), after which the stale timestamp refuses a replay. A timestamp that is not epoch time (Java's
    # System.nanoTime()/1000) is accepted with `java_timestamp_compat` (default on; off refuses such
    # requests, for deployments without Java clients) and its nonce is kept `nonce_retention_s`. That is
    # also how far back a stale epoch timestamp is recognised as one: every captured request is refused when
    # replayed within `nonce_retention_s` of being sent. Cost: docs/performance.md, "Nonce store".
    timestamp_window_s: int = 300
    nonce_ttl_s: int = 900
    nonce_retention_s: int = 30 * 86400
    java_timestamp_compat: bool = True

    # Operations with several instances (docs/deploy.md). `instance_name` labels this instance's metrics
    # (`ageguard_instance`); unset, `ageguard serve` uses "<hostname>:<port>" (a Kubernetes pod's name).
    instance_name: str | None = None
    # On SIGTERM an instance stops accepting connections and finishes its in-flight requests for at most
    # this long before it exits (below Kubernetes' terminationGracePeriodSeconds, minus the preStop pause).
    shutdown_grace_s: int = 25
    # `/ready` answers 503 when the Hub database does not answer a `SELECT 1` within this many seconds.
    ready_timeout_s: float = 2.0

    def limits(self, level: str) -> ImageLimits:
        return self.low if level == "low" else self.normal

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'ageguard.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
