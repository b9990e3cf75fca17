"""Crypto and abuse protection: password hashes, signed tokens, the sign-in throttle."""
