import numpy as np

from graft.models.features import FeatureCache, backbone_key, text_keys


def test_cache_round_trip_and_misses(tmp_path):
    cache = FeatureCache(tmp_path)
    key = backbone_key("abc", 3, 64, "bf16")
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    cache.add(key, ["x", "y", "z"], vectors)
    found, missing = cache.lookup(key, ["z", "new", "x"])
    assert missing == [1] and set(found) == {0, 2}
    assert np.array_equal(found[0], vectors[2]) and np.array_equal(found[2], vectors[0])
    assert not list(tmp_path.rglob("*.tmp"))  # shards are renamed into place, never left half-written


def test_keys_separate_every_setting_that_changes_the_vectors():
    base = backbone_key("abc", 3, 64, "bf16")
    assert len({base, backbone_key("abd", 3, 64, "bf16"), backbone_key("abc", 2, 64, "bf16"),
                backbone_key("abc", 3, 32, "bf16"), backbone_key("abc", 3, 64, "fp32")}) == 5
    assert text_keys(["a", "a ", "a"]).tolist()[0] == text_keys(["a"]).tolist()[0] != text_keys(["a "]).tolist()[0]


def test_no_root_caches_nothing(tmp_path):
    cache = FeatureCache(None)
    cache.add("k", ["x"], np.ones((1, 2), np.float32))
    assert cache.lookup("k", ["x"]) == ({}, [0])
