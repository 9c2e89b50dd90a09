from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from proxy.config import Config, ConfigError, Limits, load_config, parse_config

REPO = Path(__file__).resolve().parents[4]

VALID = """\
version: 1
upstreams:
  legacy: {url: "http://127.0.0.1:8081"}
  imageservice: {url: "http://127.0.0.1:8082"}
default_upstream: legacy
routes:
  - name: images
    match: {path_prefix: /api/images}
    primary: legacy
    candidate: imageservice
    rollout:
      percent: 25
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text))
    return caught.value.errors


def with_route(route: str) -> str:
    """The valid upstreams plus one route (written at column 0); the route starts at line 7."""
    head = VALID.split("routes:\n")[0] + "routes:\n"
    return head + textwrap.indent(textwrap.dedent(route), "  ")


def test_the_shipped_routes_yaml_is_valid_and_sends_ten_percent_of_images_to_the_image_service() -> None:
    loaded = load_config(REPO / "routes.yaml")
    config = loaded.config
    assert config.upstreams["legacy"].url == "http://127.0.0.1:8081"
    assert config.upstreams["imageservice"].url == "http://127.0.0.1:8082"
    (images,) = config.routes
    assert (images.name, images.match.path_prefix, images.primary, images.candidate) == (
        "images", "/api/images", "legacy", "imageservice")
    assert images.rollout is not None
    assert images.rollout.percent == 10
    assert images.rollout.sticky_key == ["header:X-User-Id", "cookie:uid", "client_ip"]
    assert len(images.flags) == 4


def test_defaults_are_applied() -> None:
    config = parse_config(VALID)
    assert config.trusted_proxies == []
    assert config.limits.max_body_bytes == 10 * 1024 * 1024
    assert (config.upstreams["legacy"].connect_timeout_s, config.upstreams["legacy"].timeout_s) == (2, 60)
    route = config.routes[0]
    assert route.match.methods is None
    assert route.flags == []
    assert route.rollout is not None
    assert route.rollout.sticky_key == ["client_ip"]
    assert route.rollout.on_missing_key == "primary"
    assert route.rollout.salt == "images"


def test_methods_are_upper_cased_and_urls_lose_a_trailing_slash() -> None:
    text = VALID.replace("{path_prefix: /api/images}", "{path_prefix: /api/images, methods: [get, Post]}")
    config = parse_config(text.replace('"http://127.0.0.1:8081"', '"http://127.0.0.1:8081/"'))
    assert config.routes[0].match.methods == ["GET", "POST"]
    assert config.upstreams["legacy"].url == "http://127.0.0.1:8081"


def test_the_model_is_frozen() -> None:
    config = parse_config(VALID)
    with pytest.raises(ValueError, match="frozen"):
        config.default_upstream = "imageservice"


def test_load_config_records_path_text_hash_and_time(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(VALID)
    loaded = load_config(path)
    assert loaded.path == str(path)
    assert loaded.text == VALID
    assert loaded.sha256 == hashlib.sha256(VALID.encode()).hexdigest()
    assert loaded.loaded_at > 1_600_000_000


def test_a_percentage_out_of_range_is_reported_with_file_line_and_path() -> None:
    assert errors_of(VALID.replace("percent: 25", "percent: 140")) == [
        "routes.yaml:12: routes[0].rollout.percent: must be between 0 and 100"]
    assert errors_of(VALID.replace("percent: 25", "percent: -1")) == [
        "routes.yaml:12: routes[0].rollout.percent: must be between 0 and 100"]


@pytest.mark.parametrize("percent", ["0", "0.01", "12.5", "99.99", "100"])
def test_percentages_with_up_to_two_decimals_are_accepted(percent: str) -> None:
    config = parse_config(VALID.replace("percent: 25", f"percent: {percent}"))
    assert config.routes[0].rollout is not None
    assert config.routes[0].rollout.percent == float(percent)


def test_a_percentage_with_three_decimals_is_refused() -> None:
    assert errors_of(VALID.replace("percent: 25", "percent: 12.345")) == [
        "routes.yaml:12: routes[0].rollout.percent: must have at most two decimals"]


def test_a_quoted_percentage_is_text_not_a_number() -> None:
    assert errors_of(VALID.replace("percent: 25", 'percent: "25"')) == [
        "routes.yaml:12: routes[0].rollout.percent: must be a number (got '25')"]


def test_the_file_name_is_the_one_given(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(VALID.replace("percent: 25", "percent: 101"), filename="deploy/routes.yaml")
    assert caught.value.errors == [
        "deploy/routes.yaml:12: routes[0].rollout.percent: must be between 0 and 100"]


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n", "On", "YES"])
def test_yaml_1_1_boolean_words_stay_text(word: str) -> None:
    config = parse_config(with_route(f"""\
        - name: images
          match: {{path_prefix: /api/images}}
          primary: legacy
          flags: [{{query: {word}, equals: {word}, use: primary}}]
        """))
    assert config.routes[0].flags[0].query == word
    assert config.routes[0].flags[0].equals == word


def test_a_yaml_1_1_boolean_word_as_a_key_is_an_unknown_field_not_true() -> None:
    assert errors_of(VALID + "on: 1\n") == ["routes.yaml:13: on: unknown field"]


def test_a_real_boolean_where_text_is_expected_is_an_error_not_a_conversion() -> None:
    assert errors_of(with_route("""\
        - name: images
          match: {path_prefix: /api/images}
          primary: legacy
          flags: [{header: X-New, equals: true, use: primary}]
        """)) == ['routes.yaml:10: routes[0].flags[0].equals: must be a string '
                  '(got the boolean true; write "true" in quotes if you mean the text)']


def test_a_number_where_text_is_expected_is_an_error_because_yaml_may_have_changed_it() -> None:
    assert errors_of(with_route("""\
        - name: images
          match: {path_prefix: /api/images}
          primary: legacy
          flags: [{header: X-Mode, equals: 0755, use: primary}]
        """)) == ["routes.yaml:10: routes[0].flags[0].equals: must be a string (got int 493; quote it)"]


def test_a_boolean_where_a_number_is_expected_is_an_error() -> None:
    assert errors_of(VALID.replace("percent: 25", "percent: true")) == [
        'routes.yaml:12: routes[0].rollout.percent: must be a number '
        '(got the boolean true; write "true" in quotes if you mean the text)']


def test_every_error_is_reported_together_sorted_by_line() -> None:
    text = """\
        version: 2
        upstreams:
          legacy: {url: "ftp://127.0.0.1:8081", timeout_s: 0}
          "bad name": {url: "http://x"}
        default_upstream: nowhere
        trusted_proxies: ["10.0.0.1/8", "not-a-cidr"]
        limits: {max_body_bytes: 0, max_header_bytes: 1}
        routes:
          - name: images
            match: {path_prefix: /api/images, path_regex: "^/x"}
            primary: legacy
            candidate: ghost
            shadow: {percent: 1, methodz: [GET]}
            fallback: legacy
            guard: {max_error_rate: 2}
            rollout:
              percent: 140
              sticky_key: [header:X-User-Id, "ip"]
              on_missing_key: maybe
              stickykey: []
            flags:
              - {header: X-A, cookie: b, equals: x, use: candidate}
              - {query: q, equals: x, in: [y], use: candidate}
              - {query: q, equals: x, use: sometimes}
          - name: images
            match: {path_regex: "^(unclosed"}
            primary: legacy
            rollout: {percent: 5}
          - name: default
            match: {path_prefix: /d, methods: [GET, "BAD METHOD"]}
            primary: legacy
            flags: [{header: X, equals: y, use: candidate}]
          - name: "9lives"
            match: {path_prefix: api}
            primary: legacy
            candidate: legacy
          - just text
        """
    assert errors_of(text) == [
        "routes.yaml:1: version: must be 1 (the only schema version this proxy knows)",
        "routes.yaml:3: upstreams.legacy.timeout_s: must be a number of seconds greater than 0",
        "routes.yaml:3: upstreams.legacy.url: must be an http:// or https:// URL with a host",
        "routes.yaml:4: upstreams[\"bad name\"]: upstream name 'bad name' must start with a letter and use "
        "only letters, digits, '_' and '-' (at most 63 characters): it becomes a metric label",
        "routes.yaml:5: default_upstream: unknown upstream 'nowhere' (known: bad name, legacy)",
        "routes.yaml:6: trusted_proxies[0]: '10.0.0.1/8' is not a CIDR (10.0.0.1/8 has host bits set)",
        "routes.yaml:6: trusted_proxies[1]: 'not-a-cidr' is not a CIDR "
        "('not-a-cidr' does not appear to be an IPv4 or IPv6 network)",
        "routes.yaml:7: limits.max_body_bytes: must be greater than 0",
        "routes.yaml:7: limits.max_header_bytes: must be between 256 and 1048576",
        "routes.yaml:10: routes[0].match: needs exactly one of path_prefix or path_regex",
        "routes.yaml:12: routes[0].candidate: unknown upstream 'ghost' (known: bad name, legacy)",
        "routes.yaml:13: routes[0].shadow.methodz: unknown field (did you mean 'methods'?)",
        "routes.yaml:14: routes[0].fallback: must be a mapping (got 'legacy')",
        "routes.yaml:15: routes[0].guard.max_error_rate: "
        "must be a fraction from 0 up to (not including) 1, e.g. 0.2 for 20 %",
        "routes.yaml:17: routes[0].rollout.percent: must be between 0 and 100",
        "routes.yaml:18: routes[0].rollout.sticky_key[1]: "
        "'ip' must be header:NAME, cookie:NAME, query:NAME or client_ip",
        "routes.yaml:19: routes[0].rollout.on_missing_key: "
        "must be 'primary', 'candidate' or 'random' (got 'maybe')",
        "routes.yaml:20: routes[0].rollout.stickykey: unknown field (did you mean 'sticky_key'?)",
        "routes.yaml:22: routes[0].flags[0]: needs exactly one of header, cookie or query",
        "routes.yaml:23: routes[0].flags[1]: needs exactly one of equals or in",
        "routes.yaml:24: routes[0].flags[2].use: must be 'primary' or 'candidate' (got 'sometimes')",
        "routes.yaml:25: routes[1].name: duplicate route name 'images' (first used by routes[0])",
        "routes.yaml:26: routes[1].match.path_regex: is not a valid regular expression: "
        "missing ), unterminated subpattern at position 1",
        "routes.yaml:28: routes[1].rollout: needs a candidate upstream: candidate and rollout go together",
        "routes.yaml:29: routes[2].name: 'default' is reserved for requests that match no route",
        "routes.yaml:30: routes[2].match.methods[1]: 'BAD METHOD' is not an HTTP method",
        "routes.yaml:32: routes[2].flags[0].use: is candidate, but the route has no candidate",
        "routes.yaml:33: routes[3].name: route name '9lives' must start with a letter and use only letters, "
        "digits, '_' and '-' (at most 63 characters): it becomes a metric label",
        "routes.yaml:34: routes[3].match.path_prefix: is not a usable path: the path must start with '/'",
        "routes.yaml:36: routes[3].candidate: needs a rollout block: candidate and rollout go together",
        "routes.yaml:37: routes[4]: must be a mapping (got 'just text')",
    ]


def test_a_missing_required_field_points_at_the_mapping_that_lacks_it() -> None:
    assert errors_of("""\
        version: 1
        upstreams:
          legacy: {url: "http://127.0.0.1:8081"}
        routes:
          - name: images
            primary: legacy
        """) == [
        "routes.yaml:1: default_upstream: required field is missing",
        "routes.yaml:5: routes[0].match: required field is missing",
    ]


def test_a_rollout_without_percent_is_refused() -> None:
    assert errors_of(VALID.replace("      percent: 25\n", "      salt: s\n")) == [
        "routes.yaml:11: routes[0].rollout.percent: required field is missing"]


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("/api//images", "must be written in normalized form: '/api/images'"),
        ("/api/images/", "must not end with '/' (prefixes match whole segments: write '/api/images')"),
        ("/api/%69mages", "must be written in normalized form: '/api/images'"),
        ("/api/%2e%2e/x", "is not a usable path: the path contains a refused escape %2E"),
    ],
)
def test_a_prefix_must_be_in_the_form_requests_are_matched_in(prefix: str, message: str) -> None:
    assert errors_of(VALID.replace("{path_prefix: /api/images}", f'{{path_prefix: "{prefix}"}}')) == [
        f"routes.yaml:8: routes[0].match.path_prefix: {message}"]


def test_a_regex_must_be_anchored() -> None:
    assert errors_of(VALID.replace("{path_prefix: /api/images}", '{path_regex: "images"}')) == [
        "routes.yaml:8: routes[0].match.path_regex: must start with '^': "
        "it is searched (re.search) in the normalized path"]


ONLY_HOST = "must be scheme://host[:port] only (no path, query, fragment or credentials)"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:8081", "must be an http:// or https:// URL with a host"),
        ("http://127.0.0.1:8081/api", ONLY_HOST),
        ("http://user:pw@127.0.0.1", ONLY_HOST),
        ("http://127.0.0.1:99999", "has an invalid port"),
    ],
)
def test_upstream_urls_are_checked(url: str, message: str) -> None:
    assert errors_of(VALID.replace('"http://127.0.0.1:8081"', f'"{url}"')) == [
        f"routes.yaml:3: upstreams.legacy.url: {message}"]


def test_an_empty_file_is_an_error() -> None:
    assert errors_of("") == [
        "routes.yaml:1: (root): the file is empty: "
        "expected a mapping with version, upstreams and default_upstream"]


def test_a_list_at_the_top_is_an_error() -> None:
    assert errors_of("- a\n- b\n") == [
        "routes.yaml:1: (root): the top level is not a mapping: "
        "expected a mapping with version, upstreams and default_upstream"]


def test_broken_yaml_is_reported_with_its_line() -> None:
    (error,) = errors_of(VALID.replace("default_upstream: legacy", "default_upstream: [legacy"))
    assert error.startswith("routes.yaml:6: (yaml): ")


def test_a_duplicate_key_is_an_error_not_a_silent_override() -> None:
    assert errors_of(VALID + "default_upstream: imageservice\n") == [
        "routes.yaml:13: default_upstream: duplicate key"]


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml")
    assert caught.value.errors == [
        f"{tmp_path / 'missing.yaml'}:1: (file): cannot read: No such file or directory"]


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_bytes(VALID.encode() + b"# \xff\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [f"{path}:13: (file): is not valid UTF-8"]


def test_constructing_a_config_directly_still_checks_references() -> None:
    data = parse_config(VALID).model_dump(by_alias=True)
    data["default_upstream"] = "nowhere"
    with pytest.raises(ValueError, match="default_upstream: unknown upstream 'nowhere'"):
        Config.model_validate(data)


def test_a_flag_value_cannot_be_empty() -> None:
    assert errors_of(with_route("""\
        - name: images
          match: {path_prefix: /api/images}
          primary: legacy
          flags: [{header: X-A, equals: "", use: primary}, {query: q, in: [a, ""], use: primary}]
        """)) == [
        "routes.yaml:10: routes[0].flags[0].equals: must not be empty",
        "routes.yaml:10: routes[0].flags[1].in[1]: must not be empty (an empty value never matches)",
    ]


def test_show_and_validate_agree_on_an_invalid_file(tmp_path: Path) -> None:
    from proxy.__main__ import main

    path = tmp_path / "routes.yaml"
    path.write_text(VALID.replace("percent: 25", "percent: 250"))
    assert main(["show", str(path)]) == 1
    assert main(["validate", str(path)]) == 1


def test_every_limit_has_a_safe_default() -> None:
    limits = Limits()
    assert (limits.max_body_bytes, limits.max_headers, limits.max_header_bytes, limits.max_url_bytes) == (
        10 * 1024 * 1024, 100, 32 * 1024, 8 * 1024)  # fmt: skip
    assert (limits.client_read_timeout_s, limits.max_connections) == (30.0, 4096)
