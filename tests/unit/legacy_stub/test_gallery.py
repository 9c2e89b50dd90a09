from __future__ import annotations

import hashlib

from legacy_stub.gallery import Gallery, Generation, build_generation


def generation(generation_id: str, n: int = 1) -> Generation:
    return build_generation(
        generation_id=generation_id,
        created=1_700_000_000,
        prompt="p",
        size="256x256",
        pngs=[f"{generation_id}-{i}".encode() for i in range(n)],
    )


def test_a_generation_describes_each_file_by_name_url_length_and_sha256() -> None:
    body = generation("leg_1", n=2).to_json()

    assert [image["name"] for image in body["images"]] == ["leg_1-0.png", "leg_1-1.png"]
    assert body["images"][1]["url"] == "/api/images/files/leg_1-1.png"
    assert body["images"][0]["bytes"] == len(b"leg_1-0")
    assert body["images"][0]["sha256"] == hashlib.sha256(b"leg_1-0").hexdigest()
    assert (body["images"][0]["width"], body["images"][0]["height"]) == (256, 256)


def test_newest_lists_the_latest_first_up_to_the_limit() -> None:
    gallery = Gallery(max_generations=10)
    for name in ("a", "b", "c"):
        gallery.add(generation(name))

    assert [g.id for g in gallery.newest(2)] == ["c", "b"]
    assert [g.id for g in gallery.newest(10)] == ["c", "b", "a"]


def test_beyond_its_bound_the_gallery_forgets_the_oldest_generation_and_its_files() -> None:
    gallery = Gallery(max_generations=2)
    for name in ("a", "b", "c"):
        gallery.add(generation(name))

    assert gallery.get("a") is None
    assert gallery.file("a-0.png") is None
    assert gallery.file("c-0.png") is not None
    assert len(gallery) == 2
