from __future__ import annotations

import redis

from server.db.embedded import EmbeddedRedis


def test_embedded_server_is_valkey_8_with_our_settings(redis_server: EmbeddedRedis, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    info = client.info("server")
    assert str(info["valkey_version"]).startswith("8.1")
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    unauthenticated = redis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        unauthenticated.ping()
        raise AssertionError("the embedded server answered without a password")
    except redis.exceptions.AuthenticationError:
        pass
    except redis.exceptions.ResponseError as exc:
        assert "NOAUTH" in str(exc)
    finally:
        unauthenticated.close()
        client.close()
