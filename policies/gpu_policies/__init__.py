"""The GPU platform's CrossGuard policies: one module per policy, each exporting ``POLICY``.

``common`` holds what they share: type tokens, safe property access, the single pod-spec walker,
message formatting, config parsing helpers and the guard that keeps a bug from failing a preview.
"""
