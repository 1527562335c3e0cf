"""Sign and verify throughput: the full qrgw message path vs bare ``cryptography``, same key, same run.

Full sign   = sign_request: nonce, Content-Digest (sha-256), signature base, crypto, header serialisation.
Full verify = check_request: RFC 8941 parsing of Signature-Input/Signature, profile checks, key
              lookup, base rebuild, crypto, Content-Digest check (the nonce store call is excluded:
              it is a store round trip, measured with the store).
Bare        = the key's own sign()/verify() over a signature base of the same size.
Goal (issue 4): full path <= 1.5x the bare crypto cost for Ed25519.

Run: /work/venv/bin/python bench/signing.py [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from gateway.signing import ALGORITHMS, KeyRegistry, PublicKeyEntry, Signer, check_request, generate_key, sign_request

URL = "https://gateway.qrgw.dev/v1/payments?lang=en"
BODY = (b'{"request_id":"req_01HV7Z","qr":"00020101021226360010com.kakaopay0118KP00000000000001'
        b'5204581253034105802KR5911HANGANG BBQ6005SEOUL6304ABCD","payer":{"id":"u-1"},'
        b'"amount":{"currency":"KRW","value":"15000"}}')


def rates(a: Callable[[], object], b: Callable[[], object], seconds: float, rounds: int = 20) -> tuple[float, float]:
    """ops/s of ``a`` and ``b`` measured in alternating slices, so both see the same machine load
    (the box is shared; sequential runs of a then b drift)."""
    a(), b()
    totals = [[0, 0.0], [0, 0.0]]
    for _ in range(rounds):
        for slot, fn in ((0, a), (1, b)):
            n, start = 0, time.perf_counter()
            deadline = start + seconds / rounds / 2
            while True:
                for _ in range(10):
                    fn()
                n += 10
                now = time.perf_counter()
                if now >= deadline:
                    break
            totals[slot][0] += n
            totals[slot][1] += now - start
    return totals[0][0] / totals[0][1], totals[1][0] / totals[1][1]


def bench(alg: str, seconds: float) -> tuple[float, float, float, float]:
    key = generate_key(alg)
    signer = Signer("bench-1", alg, key)
    registry = KeyRegistry([], [PublicKeyEntry("bench-1", "bench", alg, key.public_key())])
    headers = {"Content-Type": "application/json"}
    sign_request(signer, method="POST", url=URL, headers=headers, body=BODY)
    base = b"x" * (len(headers["Signature-Input"]) + 250)  # about the size of the real base
    raw_sign = signer._sign  # the bare primitive with this algorithm's parameters
    sig = raw_sign(base)
    entry = registry.lookup("bench-1", time.time())
    raw_verify = entry._verify

    def full_sign() -> None:
        sign_request(signer, method="POST", url=URL, headers={"Content-Type": "application/json"}, body=BODY)

    def full_verify() -> None:
        check_request(registry, method="POST", url=URL, headers=headers, body=BODY)

    bare_sign, full_sign_rate = rates(lambda: raw_sign(base), full_sign, seconds)
    bare_verify, full_verify_rate = rates(lambda: raw_verify(sig, base), full_verify, seconds)
    return bare_sign, full_sign_rate, bare_verify, full_verify_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per bare/full pair")
    args = parser.parse_args()
    print(f"{'algorithm':<18} {'bare sign/s':>12} {'full sign/s':>12} {'ratio':>6}"
          f" {'bare verify/s':>14} {'full verify/s':>14} {'ratio':>6}")
    for alg in ALGORITHMS:
        bs, fs, bv, fv = bench(alg, args.seconds)
        print(f"{alg:<18} {bs:>12,.0f} {fs:>12,.0f} {bs / fs:>5.2f}x {bv:>14,.0f} {fv:>14,.0f} {bv / fv:>5.2f}x")
    print("ratio = full-path cost / bare-crypto cost (goal for ed25519: <= 1.5x)")


if __name__ == "__main__":
    main()
