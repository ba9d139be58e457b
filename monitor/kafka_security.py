"""How every Kafka client of the product authenticates, read once from the environment.

Inside `docker compose` the broker is reachable only on the compose network, in plaintext. A
broker reached from elsewhere (the `docker-compose.external.yml` listener, a managed cluster)
wants SASL/SCRAM over TLS or at least SASL; the worker (Faust/aiokafka), the simulator, the
dashboard feed, `monitor.tail` and topic creation all take the same settings:

    KAFKA_SECURITY_PROTOCOL   PLAINTEXT (default), SASL_PLAINTEXT, SASL_SSL or SSL
    KAFKA_SASL_MECHANISM      SCRAM-SHA-512 (default), SCRAM-SHA-256 or PLAIN
    KAFKA_SASL_USERNAME       and KAFKA_SASL_PASSWORD, or KAFKA_SASL_PASSWORD_FILE (a secret)
    KAFKA_SSL_CAFILE          CA bundle that signed the broker's certificate (SSL, SASL_SSL)
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import InputError

PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True)
class KafkaSecurity:
    """A client's security settings; the default is plaintext without authentication."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = None
    cafile: str | None = None

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> KafkaSecurity:
        env = dict(os.environ if env is None else env)
        protocol = env.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT"
        if protocol not in PROTOCOLS:
            raise InputError(
                f"$KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, got {protocol!r}"
            )
        mechanism = env.get("KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512"
        if mechanism not in MECHANISMS:
            raise InputError(
                f"$KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, got {mechanism!r}"
            )
        password = env.get("KAFKA_SASL_PASSWORD")
        if not password and env.get("KAFKA_SASL_PASSWORD_FILE"):
            path = Path(env["KAFKA_SASL_PASSWORD_FILE"])
            if not path.is_file():
                raise InputError(f"$KAFKA_SASL_PASSWORD_FILE: no file {path}")
            password = path.read_text().strip()
        security = cls(protocol, mechanism, env.get("KAFKA_SASL_USERNAME"), password,
                       env.get("KAFKA_SSL_CAFILE") or None)  # fmt: skip
        if security.sasl and not (security.username and security.password):
            raise InputError(
                f"$KAFKA_SECURITY_PROTOCOL={protocol} needs $KAFKA_SASL_USERNAME and "
                "$KAFKA_SASL_PASSWORD (or $KAFKA_SASL_PASSWORD_FILE)"
            )
        if security.cafile and not Path(security.cafile).is_file():
            raise InputError(f"$KAFKA_SSL_CAFILE: no file {security.cafile}")
        return security

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (the CA file, else the system's), or None without TLS."""
        return ssl.create_default_context(cafile=self.cafile) if self.tls else None

    def kafka_python(self) -> dict:
        """Keyword arguments for kafka-python's consumer, producer and admin client."""
        if self.protocol == "PLAINTEXT":
            return {}
        kwargs: dict = {"security_protocol": self.protocol}
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.sasl:
            kwargs.update(
                sasl_mechanism=self.mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return kwargs

    def faust(self):
        """Faust's broker credentials (None for plaintext)."""
        import faust

        if self.sasl:
            return faust.SASLCredentials(
                username=self.username, password=self.password, mechanism=self.mechanism,
                ssl_context=self.ssl_context(),
            )  # fmt: skip
        if self.tls:
            return faust.SSLCredentials(self.ssl_context())
        return None
