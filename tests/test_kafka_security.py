"""Every Kafka client reads one set of security settings, checked loudly."""

from __future__ import annotations

import ssl

import faust
import pytest

from monitor.errors import InputError
from monitor.kafka_security import KafkaSecurity


def test_plaintext_by_default_adds_nothing_to_the_clients():
    security = KafkaSecurity.from_env({})
    assert security.protocol == "PLAINTEXT"
    assert security.kafka_python() == {} and security.faust() is None


def test_sasl_scram_reaches_kafka_python_and_faust(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("a long passphrase\n")
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "ops",
           "KAFKA_SASL_PASSWORD_FILE": str(secret)}
    security = KafkaSecurity.from_env(env)
    kwargs = security.kafka_python()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == (
        "ops", "a long passphrase")
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    creds = security.faust()
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.mechanism.value == "SCRAM-SHA-512" and creds.username == "ops"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "must be one of PLAINTEXT"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "needs $KAFKA_SASL_USERNAME"),
        ({"KAFKA_SASL_MECHANISM": "MD5"}, "must be one of SCRAM-SHA-512"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
         "no file /nonexistent/ca.pem"),
        ({"KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"}, "no file /nonexistent/pw"),
    ],
)
def test_bad_settings_are_one_clear_error(env, message):
    with pytest.raises(InputError, match=message.replace("$", r"\$")):
        KafkaSecurity.from_env(env)
