"""The planning layer: what the rules ask of a config (outputs, inputs, params, resources,
containers) and the checks a config passes before anything is planned. Only the rules and the
whole-config tools (``distillery.doctor``) import it; job modules never do
(tests/unit/test_layout.py)."""
