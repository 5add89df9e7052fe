"""WeCom's callback encryption (企业微信回调加解密), the one place that knows it.

    key        = base64decode(EncodingAESKey + "=")            32 bytes: AES-256
    iv         = key[:16]
    plaintext  = 16 random bytes + len(msg) (4 bytes, big-endian) + msg + ReceiveId
    padding    = PKCS#7 to a multiple of 32 bytes (WeCom's block, not AES's 16)
    Encrypt    = base64(AES-256-CBC(key, iv, padded plaintext))
    signature  = sha1 hex of the sorted, concatenated [token, timestamp, nonce, Encrypt]

ReceiveId is the corp id for corp callbacks (the suite id for third-party apps): a message
encrypted for another receiver is refused. The signature is compared in constant time. Freshness
of the timestamp is the callback handler's business, not this class's: the official test vectors
are years old and must still decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes


class WeComCryptoError(Exception):
    """A callback that cannot be trusted or read. The message names what was wrong."""


class InvalidSignature(WeComCryptoError):
    pass


class InvalidReceiveId(WeComCryptoError):
    pass


class InvalidCiphertext(WeComCryptoError):
    pass


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """The msg_signature WeCom puts on a callback (and expects on an encrypted reply)."""
    return hashlib.sha1("".join(sorted([token, str(timestamp), str(nonce), encrypt])).encode()).hexdigest()


class WeComCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str):
        if not token:
            raise ValueError("the callback Token is empty (admin console → app → 接收消息 → Token)")
        if len(encoding_aes_key) != 43:
            raise ValueError(f"the EncodingAESKey has {len(encoding_aes_key)} characters; WeCom's has 43")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error:
            raise ValueError("the EncodingAESKey is not base64 (43 characters of A-Z, a-z, 0-9, + and /)") from None
        if not receive_id:
            raise ValueError("the ReceiveId (the corp id, ww…) is empty")
        self.token = token
        self.receive_id = receive_id.encode()
        self._key = key
        self._iv = key[:16]

    # -- the public API ------------------------------------------------------------------------------

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET URL verification: the plain echostr to answer with (as the response body)."""
        return self.decrypt(msg_signature, timestamp, nonce, echostr)

    def decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """The plain message of a callback's <Encrypt>; raises a WeComCryptoError when the
        signature, the ciphertext or the ReceiveId is wrong."""
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), (msg_signature or "").lower().encode()):
            raise InvalidSignature("msg_signature does not match the Token, timestamp, nonce and ciphertext")
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidCiphertext("the ciphertext is not base64") from None
        if not data or len(data) % 16:
            raise InvalidCiphertext(f"the ciphertext is {len(data)} bytes, not whole AES blocks")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise InvalidCiphertext("bad padding: wrong EncodingAESKey or a damaged message")
        plain = padded[:-pad]
        if len(plain) < 20:
            raise InvalidCiphertext("the message is shorter than its header")
        (length,) = struct.unpack("!I", plain[16:20])
        if 20 + length > len(plain):
            raise InvalidCiphertext("the message length runs past its end")
        message, receive_id = plain[20:20 + length], plain[20 + length:]
        if not hmac.compare_digest(receive_id, self.receive_id):
            raise InvalidReceiveId("the message was encrypted for another ReceiveId (corp id)")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidCiphertext("the message is not UTF-8") from None

    def encrypt(self, reply: str, nonce: str, timestamp: str) -> tuple[str, str]:
        """A passive reply's (Encrypt, MsgSignature)."""
        message = reply.encode("utf-8")
        plain = os.urandom(16) + struct.pack("!I", len(message)) + message + self.receive_id
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
        encrypt = base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
        return encrypt, signature(self.token, str(timestamp), str(nonce), encrypt)
