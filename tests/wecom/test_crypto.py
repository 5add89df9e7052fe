"""WeCom's callback crypto: both official vectors, round trips, and tampering refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings, strategies as st

from adapters.wecom.crypto import InvalidCiphertext, InvalidReceiveId, InvalidSignature, WeComCrypto, signature

# the current sample of WeCom's WXBizMsgCrypt (加解密库 Sample.py)
TOKEN, KEY, CORP = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", "ww1436e0e65a779aee"
ECHOSTR = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
REQ_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kk"
    "YcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4"
    "Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f4"
    "9HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+")
# the classic document's vector (企业号 回调模式 sample)
CLASSIC = ("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
CLASSIC_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="


def test_official_url_vector() -> None:
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    assert crypto.verify_url("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683",
                             ECHOSTR) == "1288432023552776189"


def test_classic_document_vector() -> None:
    crypto = WeComCrypto(*CLASSIC)
    assert crypto.verify_url("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
                             CLASSIC_ECHOSTR) == "1616140317555161061"


def test_official_message_vector_decrypts_to_the_sample_message() -> None:
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    xml = crypto.decrypt("0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", REQ_ENCRYPT)
    assert "<Content>你好</Content>" in xml and "<MsgId>1456453720</MsgId>" in xml


@settings(max_examples=60, deadline=None)
@given(reply=st.text(max_size=600), nonce=st.text("0123456789", min_size=1, max_size=10),
       timestamp=st.integers(min_value=0, max_value=2**32).map(str))
def test_encrypt_then_decrypt_round_trips(reply: str, nonce: str, timestamp: str) -> None:
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    encrypt, sig = crypto.encrypt(reply, nonce, timestamp)
    assert len(base64.b64decode(encrypt)) % 32 == 0  # padded to WeCom's 32-byte block
    assert crypto.decrypt(sig, timestamp, nonce, encrypt) == reply


def test_a_wrong_signature_is_refused() -> None:
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    encrypt, sig = crypto.encrypt("<xml/>", "1", "1700000000")
    for bad in ("0" * 40, sig[:-1] + ("0" if sig[-1] != "0" else "1"), ""):
        with pytest.raises(InvalidSignature, match="msg_signature"):
            crypto.decrypt(bad, "1700000000", "1", encrypt)
    with pytest.raises(InvalidSignature):  # the same signature over another timestamp or nonce
        crypto.decrypt(sig, "1700000001", "1", encrypt)
    with pytest.raises(InvalidSignature):  # a changed ciphertext breaks the signature
        crypto.decrypt(sig, "1700000000", "1", "A" + encrypt[1:])


def test_a_message_for_another_receiver_is_refused() -> None:
    other = WeComCrypto(TOKEN, KEY, "ww0000000000000000")
    encrypt, sig = other.encrypt("<xml/>", "1", "1700000000")
    with pytest.raises(InvalidReceiveId, match="ReceiveId"):
        WeComCrypto(TOKEN, KEY, CORP).decrypt(sig, "1700000000", "1", encrypt)


def test_garbage_with_a_valid_signature_is_a_clear_error() -> None:
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    for encrypt in ("not base64!", base64.b64encode(b"short").decode(), base64.b64encode(bytes(32)).decode()):
        with pytest.raises(InvalidCiphertext):
            crypto.decrypt(signature(TOKEN, "1", "1", encrypt), "1", "1", encrypt)
    # another key: the padding (or the ReceiveId) cannot come out right
    encrypt, sig = WeComCrypto(TOKEN, "a" * 43, CORP).encrypt("x" * 40, "1", "1")
    with pytest.raises((InvalidCiphertext, InvalidReceiveId)):
        crypto.decrypt(sig, "1", "1", encrypt)


def test_bad_settings_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="43"):
        WeComCrypto(TOKEN, KEY[:-1], CORP)
    with pytest.raises(ValueError, match="Token"):
        WeComCrypto("", KEY, CORP)
    with pytest.raises(ValueError, match="base64"):
        WeComCrypto(TOKEN, "!" * 43, CORP)
