"""FP8 KV caches through etap.flash_mla (issue 11), on the GPU: an e4m3 cache with vLLM's descale_k, and
DeepSeek-V3.2's 656-byte tokens, each against etap's dense bf16 call over the same dequantised values (the
test data uses power-of-two scales, so e4m3 · scale is exact in bf16 and both calls see the same K and V)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import mla_data  # noqa: E402

from etap import flash_mla  # noqa: E402

SCALE = 0.1352


def run(q, k_cache, kv, **fp8):
    meta, _ = flash_mla.get_mla_metadata()
    return flash_mla.flash_mla_with_kvcache(q, k_cache, kv.block_table, kv.seqlens, 512, meta, None,
                                            softmax_scale=SCALE, **fp8)


def close(fp8, dense):
    # Same values, same kernel structure; the FP8 kernel folds descale_k into the logit scale (one more fp32
    # rounding), so P's bf16 rounding may differ in the last place.
    torch.testing.assert_close(fp8[0].float(), dense[0].float(), atol=2e-3, rtol=2e-2)
    torch.testing.assert_close(fp8[1], dense[1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("b,s_k,h_q", [(2, 300, 16), (4, 4096, 16), (2, 1000, 64), (2, 600, 128)])
def test_per_tensor_fp8_matches_dense(device, b, s_k, h_q):
    kv = mla_data.make_paged_kv(b, s_k, varlen=True, seed=3)
    q = mla_data.make_q(b, 1, h_q, seed=4)
    descale = torch.tensor([2.0 ** -6], device=device)  # k / descale fits e4m3's range
    k8 = (kv.k_cache.float() / descale).to(torch.float8_e4m3fn)
    dense = (k8.float() * descale).to(torch.bfloat16)
    close(run(q, k8, kv, is_fp8_kvcache=True, descale_k=descale), run(q, dense, kv))
    # uint8 storage (FlashMLA's and vLLM's) is the same cache.
    close(run(q, k8.view(torch.uint8), kv, is_fp8_kvcache=True, descale_k=descale), run(q, dense, kv))


def test_descale_q_scales_the_query(device):
    kv = mla_data.make_paged_kv(2, 500, varlen=False, seed=5)
    q = mla_data.make_q(2, 1, 16, seed=6)
    descale = torch.tensor([2.0 ** -6], device=device)
    k8 = (kv.k_cache.float() / descale).to(torch.float8_e4m3fn)
    two = torch.tensor([2.0], device=device)
    close(run(q, k8, kv, is_fp8_kvcache=True, descale_k=descale, descale_q=two),
          run(q * 2, k8, kv, is_fp8_kvcache=True, descale_k=descale))


def v32_tokens(k_cache):
    """DeepSeek-V3.2's 656-byte tokens of a bf16 [pages, 64, 1, 576] cache, and the dense bf16 cache of their
    dequantised values: latent e4m3 with one power-of-two fp32 scale per 128 channels, RoPE bf16."""
    pages, page, h_kv, _ = k_cache.shape
    latent = k_cache[..., :512].float().reshape(pages, page, h_kv, 4, 128)
    amax = latent.abs().amax(-1, keepdim=True).clamp_min(2.0 ** -20)
    scale = torch.exp2(torch.ceil(torch.log2(amax / 448)))
    codes = (latent / scale).to(torch.float8_e4m3fn)
    dequant = (codes.float() * scale).reshape(pages, page, h_kv, 512)
    rope = k_cache[..., 512:]
    tokens = torch.cat([codes.reshape(pages, page, h_kv, 512).view(torch.uint8),
                        scale.reshape(pages, page, h_kv, 4).contiguous().view(torch.uint8),
                        rope.contiguous().view(torch.uint8)], dim=-1)
    assert tokens.shape[-1] == 656
    return tokens, torch.cat([dequant.to(torch.bfloat16), rope], dim=-1)


@pytest.mark.parametrize("b,s_k,h_q", [(2, 300, 16), (4, 4096, 16), (2, 1000, 64), (2, 600, 128)])
def test_deepseek_v32_matches_dense(device, b, s_k, h_q):
    kv = mla_data.make_paged_kv(b, s_k, varlen=True, seed=7)
    q = mla_data.make_q(b, 1, h_q, seed=8)
    tokens, dense = v32_tokens(kv.k_cache)
    close(run(q, tokens, kv, is_fp8_kvcache=True), run(q, dense, kv))
