#!/usr/bin/python3
# Negative-case ID tokens for kubegate's end-to-end tests, made with
# Debian's python3-jwt (PyJWT). Each case breaks one rule a verifier must
# hold; most are signed with the test provider's real private key, so only
# that rule can refuse them.
#
#   /usr/bin/python3 forge.py --private-jwks P --issuer URL --case CASE [--sub alice]
#
# Cases: valid, wrong_issuer, wrong_audience, expired, not_yet_valid,
# alg_none, hs256_with_public_key, unknown_kid, oversized.
import argparse
import json
import sys
import time

import jwt
from jwt.algorithms import RSAAlgorithm, ECAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

p = argparse.ArgumentParser()
p.add_argument("--private-jwks", required=True)
p.add_argument("--issuer", required=True)
p.add_argument("--case", required=True)
p.add_argument("--sub", default="alice")
p.add_argument("--audience", default="kubegate")
a = p.parse_args()

jwk = json.load(open(a.private_jwks))["keys"][0]
alg = jwk.get("alg", "RS256")
key = (ECAlgorithm if jwk["kty"] == "EC" else RSAAlgorithm).from_jwk(json.dumps(jwk))
now = int(time.time())
claims = {"iss": a.issuer, "sub": a.sub, "aud": a.audience, "email": a.sub + "@example.com",
          "email_verified": True, "groups": ["dev"], "iat": now, "exp": now + 600}
headers = {"kid": jwk["kid"]}
case = a.case

if case == "wrong_issuer":
    claims["iss"] = a.issuer + "/other"
elif case == "wrong_audience":
    claims["aud"] = "someone-else"
elif case == "expired":
    claims["iat"], claims["exp"] = now - 7200, now - 3600
elif case == "not_yet_valid":
    claims["nbf"] = now + 3600
elif case == "oversized":
    claims["pad"] = "x" * 20000
elif case == "alg_none":
    print(jwt.encode(claims, None, algorithm="none", headers=headers), end="")
    sys.exit(0)
elif case == "hs256_with_public_key":
    # The public key, as the provider publishes it, used as an HMAC secret:
    # accepted by a verifier that trusts the token's own "alg".
    public = {k: v for k, v in jwk.items() if k in ("kty", "n", "e", "crv", "x", "y", "kid", "alg", "use")}
    print(jwt.encode(claims, json.dumps(public), algorithm="HS256", headers=headers), end="")
    sys.exit(0)
elif case == "unknown_kid":
    # A well-formed token signed by a key the provider never published.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    print(jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "stranger-1"}), end="")
    sys.exit(0)
elif case != "valid":
    sys.exit("unknown case " + case)

print(jwt.encode(claims, key, algorithm=alg, headers=headers), end="")
