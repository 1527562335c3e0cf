"""The partner kit: tools for partner engineers (conformance runner, signed calls, key tooling).

Not part of the serving path: the service modules never import it.
"""
