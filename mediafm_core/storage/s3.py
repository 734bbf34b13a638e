"""S3 settings from the environment, the filesystems and LanceDB options built from them, and a
start-up check of an `s3://bucket/prefix` storage root.

Every S3 client of the project (s3fs/fsspec under UPath and the arrival sensor, pyarrow, LanceDB's
Rust object store, boto3 through dagster-aws's `S3Resource`) reads the SAME settings:

| variable | meaning |
|---|---|
| AWS_ENDPOINT_URL | S3-compatible endpoint (MinIO, moto, ...); unset/empty = AWS itself |
| AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY | credentials; unset = the default chain (role, ~/.aws) |
| AWS_SESSION_TOKEN | temporary credentials only |
| AWS_REGION (or AWS_DEFAULT_REGION) | region, default us-east-1 |

`check_storage_root` turns the three usual misconfigurations — unreachable endpoint, wrong
credentials, missing bucket — into ONE `InputError` naming the root and the fix, before any step
writes anything (so nothing stored is touched). Secrets never appear in errors or reprs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

from mediafm_core.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"  # boto3/s3fs need one; MinIO and moto accept any
CHECK_TIMEOUT_S = 5.0  # connect/read timeout of the start-up check: fail fast, not after retries


@dataclass(frozen=True)
class S3Settings:
    """Connection settings of the S3 (or S3-compatible) service. Secrets are left out of repr."""

    endpoint_url: str | None = None  # AWS_ENDPOINT_URL; None = AWS's own endpoints
    access_key_id: str | None = field(default=None, repr=False)  # None = default chain
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)  # temporary credentials only
    region: str = DEFAULT_REGION  # AWS_REGION / AWS_DEFAULT_REGION

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        """Settings from the environment (empty values count as unset)."""
        env = os.environ if env is None else env

        def get(*names: str) -> str | None:
            for name in names:
                if env.get(name):
                    return env[name]
            return None

        return cls(
            endpoint_url=get("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
            access_key_id=get("AWS_ACCESS_KEY_ID"),
            secret_access_key=get("AWS_SECRET_ACCESS_KEY"),
            session_token=get("AWS_SESSION_TOKEN"),
            region=get("AWS_REGION", "AWS_DEFAULT_REGION") or DEFAULT_REGION,
        )

    @property
    def allow_http(self) -> bool:
        """Plain-HTTP endpoints (a loopback emulator, an in-cluster MinIO) must be allowed
        explicitly for LanceDB's object store."""
        return bool(self.endpoint_url) and self.endpoint_url.startswith("http://")

    def describe(self) -> str:
        """Where requests go, for error messages (no secrets)."""
        return self.endpoint_url or f"AWS S3 ({self.region})"

    def boto3_kwargs(self) -> dict:
        """Keyword arguments of `boto3.client("s3", ...)` (also dagster-aws's S3Resource fields)."""
        out = {"region_name": self.region}
        if self.endpoint_url:
            out["endpoint_url"] = self.endpoint_url
        if self.access_key_id:
            out["aws_access_key_id"] = self.access_key_id
            out["aws_secret_access_key"] = self.secret_access_key
        if self.session_token:
            out["aws_session_token"] = self.session_token
        return out

    def fsspec_options(self) -> dict:
        """`storage_options` for s3fs / fsspec / UPath / polars."""
        client = {"region_name": self.region}
        if self.endpoint_url:
            client["endpoint_url"] = self.endpoint_url
        out: dict = {"client_kwargs": client}
        if self.access_key_id:
            out.update(key=self.access_key_id, secret=self.secret_access_key)
        if self.session_token:
            out["token"] = self.session_token
        return out

    def lance_storage_options(self) -> dict[str, str]:
        """`storage_options` for `lancedb.connect` / `lance.dataset` (Rust object_store keys)."""
        out = {"aws_region": self.region}
        if self.endpoint_url:
            out["aws_endpoint"] = self.endpoint_url
        if self.allow_http:
            out["allow_http"] = "true"
        if self.access_key_id:
            out["aws_access_key_id"] = self.access_key_id
            out["aws_secret_access_key"] = self.secret_access_key or ""
        if self.session_token:
            out["aws_session_token"] = self.session_token
        return out


def _digest(uri: str) -> str:
    """Short stable name of a URI for cache folders (trailing slashes ignored)."""
    return hashlib.sha1(uri.rstrip("/").encode()).hexdigest()[:16]


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def split_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not is_s3(uri):
        raise InputError(uri, "not an s3:// URI")
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise InputError(uri, "has no bucket name (expected s3://bucket/prefix)")
    return bucket, key.strip("/")


def fsspec_filesystem(settings: S3Settings | None = None):
    """An s3fs filesystem for these settings (listing cache off: the sensor must see new keys)."""
    import s3fs

    settings = settings or S3Settings.from_env()
    return s3fs.S3FileSystem(use_listings_cache=False, **settings.fsspec_options())


def arrow_filesystem(settings: S3Settings | None = None):
    """A `pyarrow.fs.S3FileSystem` for these settings (pyarrow.parquet / dataset reads)."""
    from pyarrow import fs as pafs

    settings = settings or S3Settings.from_env()
    kwargs: dict = {"region": settings.region}
    if settings.endpoint_url:
        scheme, _, host = settings.endpoint_url.partition("://")
        kwargs.update(endpoint_override=host, scheme=scheme)
    if settings.access_key_id:
        kwargs.update(
            access_key=settings.access_key_id,
            secret_key=settings.secret_access_key,
            session_token=settings.session_token,
        )
    return pafs.S3FileSystem(**kwargs)


def storage_options_for(uri: str, settings: S3Settings | None = None) -> dict[str, str]:
    """LanceDB `storage_options` for a URI: the S3 settings for s3://, nothing for a folder."""
    if not is_s3(uri):
        return {}
    return (settings or S3Settings.from_env()).lance_storage_options()


def boto3_client(settings: S3Settings | None = None, timeout_s: float | None = None):
    """A boto3 S3 client; with `timeout_s`, short timeouts and no retries (start-up checks)."""
    import boto3
    from botocore.config import Config

    settings = settings or S3Settings.from_env()
    config = None
    if timeout_s is not None:
        config = Config(
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"max_attempts": 1, "mode": "standard"},
        )
    return boto3.client("s3", config=config, **settings.boto3_kwargs())


_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "403",
    "Forbidden",
}
_MISSING_BUCKET_CODES = {"NoSuchBucket", "404", "NotFound"}


def check_storage_root(
    root: str, settings: S3Settings | None = None, timeout_s: float = CHECK_TIMEOUT_S
) -> None:
    """Raise ONE clear `InputError` if an s3:// root cannot be used; no-op for a local folder.

    One request: a one-key ListObjectsV2 under the prefix proves the endpoint answers, the
    credentials are valid, the bucket exists and may be read (HeadBucket would answer a bare 403/
    404 without the error code). Nothing is written.
    """
    if not is_s3(root):
        return
    import botocore.exceptions as bex

    settings = settings or S3Settings.from_env()
    bucket, prefix = split_uri(root)
    where = settings.describe()
    try:
        client = boto3_client(settings, timeout_s)
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except (
        bex.EndpointConnectionError,
        bex.ConnectTimeoutError,
        bex.ReadTimeoutError,
        bex.ConnectionClosedError,
    ) as exc:
        raise InputError(
            root,
            f"cannot reach the S3 endpoint {where} ({type(exc).__name__}); "
            "check AWS_ENDPOINT_URL and the network",
        ) from None
    except bex.NoCredentialsError:
        raise InputError(
            root,
            f"no S3 credentials found for {where}; set AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY (or give the pod/task a role)",
        ) from None
    except bex.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _MISSING_BUCKET_CODES or status == "404":
            raise InputError(
                root, f"bucket {bucket!r} does not exist at {where}; create it or fix MEDIAFM_ROOT"
            ) from None
        if code in _CREDENTIAL_CODES or status == "403":
            raise InputError(
                root,
                f"S3 rejected the credentials for bucket {bucket!r} at "
                f"{where} ({code or status}); check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY and the bucket policy",
            ) from None
        raise InputError(root, f"S3 error {code or status} at {where}") from None
    except ValueError as exc:  # botocore: malformed endpoint URL
        raise InputError(root, f"invalid S3 endpoint {where!r}: {exc}") from None
    log.info("storage root %s reachable at %s", root, where)


def download_prefix(uri: str, dest: str, settings: S3Settings | None = None) -> list[str]:
    """Copy every object under an s3:// prefix into the local folder `dest` (media decoding and
    torch need local files). Returns the local paths, sorted."""
    fs = fsspec_filesystem(settings)
    bucket, prefix = split_uri(uri)
    base = f"{bucket}/{prefix}".rstrip("/")
    out = []
    for key in sorted(fs.find(base)):
        local = os.path.join(dest, os.path.relpath(key, base))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        fs.get_file(key, local)
        out.append(local)
    if not out:
        raise InputError(uri, "no objects under this prefix")
    return out


def upload_folder(folder: str, uri: str, settings: S3Settings | None = None) -> list[str]:
    """Copy a local folder's files under an s3:// prefix (each file one PUT, so each object is
    all-or-nothing). Returns the keys written, sorted."""
    fs = fsspec_filesystem(settings)
    bucket, prefix = split_uri(uri)
    keys = []
    for dirpath, _dirs, files in os.walk(folder):
        for name in sorted(files):
            local = os.path.join(dirpath, name)
            rel = os.path.relpath(local, folder).replace(os.sep, "/")
            key = f"{bucket}/{prefix}/{rel}" if prefix else f"{bucket}/{rel}"
            fs.put_file(local, key)
            keys.append(key)
    return sorted(keys)


def cache_dir(kind: str) -> str:
    """Local cache folder for copies of S3 objects ($MEDIAFM_CACHE or the temp dir)."""
    base = os.environ.get("MEDIAFM_CACHE") or os.path.join(tempfile.gettempdir(), "mediafm-cache")
    path = os.path.join(base, kind)
    os.makedirs(path, exist_ok=True)
    return path


def local_copy(
    uri: str, kind: str, settings: S3Settings | None = None, name: str | None = None
) -> str:
    """A local folder holding everything under `uri` (downloaded once, then reused); a local
    `uri` is returned unchanged. For immutable things only: landed titles (their ready marker is
    written last) and checkpoints (one folder per model_version). The copy lands in a temp folder
    first and is renamed into place, so a half-finished download is never reused."""
    if not is_s3(uri):
        return uri
    name = name or _digest(uri)
    final = os.path.join(cache_dir(kind), name)
    if os.path.isdir(final):
        return final
    tmp = tempfile.mkdtemp(prefix=".partial-", dir=cache_dir(kind))
    try:
        download_prefix(uri, tmp, settings)
        os.replace(tmp, final)
    except OSError:
        if not os.path.isdir(final):  # else a concurrent download won the rename: use its copy
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def local_landing_root(landing: str, title_ids, settings: S3Settings | None = None) -> str:
    """A local landing root holding `title_ids`' folders, for decoders that need local files.

    A local landing zone is returned as is. For s3:// each title folder is downloaded once
    (video, subtitles, metadata.json; `truth/` too when present) into a cache folder named after
    the landing URI, and that folder is the root `open_title` is given (real folders, no links,
    so the landing-zone escape checks hold)."""
    if not is_s3(landing):
        return landing
    kind = os.path.join("landing", _digest(landing))
    for title_id in title_ids:
        if not title_id or "/" in title_id or title_id.startswith("."):
            raise InputError(f"title {title_id!r}", "is not a valid title id (landing zone escape)")
        local_copy(f"{landing.rstrip('/')}/{title_id}", kind, settings, name=title_id)
    return cache_dir(kind)


def local_file(uri: str, kind: str, settings: S3Settings | None = None) -> str:
    """A local path for one object: `uri` itself when local, else a fresh download into the
    cache (torch and the trainer read local files)."""
    if not is_s3(uri):
        return uri
    bucket, key = split_uri(uri)
    folder = os.path.join(cache_dir(kind), _digest(uri))
    os.makedirs(folder, exist_ok=True)
    local = os.path.join(folder, os.path.basename(key))
    tmp = f"{local}.partial-{os.getpid()}"
    fsspec_filesystem(settings).get_file(f"{bucket}/{key}", tmp)
    os.replace(tmp, local)
    return local


def local_work_dir(uri: str, kind: str) -> str:
    """A local folder standing in for a remote output folder while it is written (the same path
    for every process on the machine, so torchrun ranks agree); uploaded when complete."""
    return os.path.join(cache_dir(kind), _digest(uri))
