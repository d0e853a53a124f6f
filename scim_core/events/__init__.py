"""Provisioning events for the line-of-business app: RFC 9967 SCIM events in RFC 8417 Security
Event Tokens, written by a transactional outbox and delivered by RFC 8936 poll (``POST
/Events``) or RFC 8935 push.

- :mod:`~scim_core.events.record`: the outbox producer: one event row per committed change.
- :mod:`~scim_core.events.tokens`: a row as a SET (claims; JWS-signed or unsecured).
- :mod:`~scim_core.events.feed`: the pending events of both partitions as one stream; ack,
  setErrs, retention.
- :mod:`~scim_core.events.poll`: the RFC 8936 endpoint.
- :mod:`~scim_core.events.push`: the RFC 8935 push timer.

docs/events.md is the consumer's guide.
"""
