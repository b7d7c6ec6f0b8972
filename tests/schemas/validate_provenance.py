#!/usr/bin/python3
"""Validates a provenance.json: the in-toto Statement v1 schema for the
envelope, the SLSA Provenance v1 schema for the predicate (when predicateType
says SLSA v1). Prints one line per problem and exits 1, or exits 0."""
import json
import pathlib
import sys

import jsonschema

here = pathlib.Path(__file__).resolve().parent


def load(name):
    return json.loads((here / name).read_text())


statement_schema = load("in-toto-statement-v1.schema.json")
slsa_schema = load("slsa-provenance-v1.schema.json")
store = {s["$id"]: s for s in (statement_schema, slsa_schema)}


def validator(schema):
    # Debian 12's jsonschema (4.10) resolves references through RefResolver;
    # newer releases through the referencing package.
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    try:
        from referencing import Registry, Resource
        registry = Registry().with_resources(
            [(k, Resource.from_contents(v)) for k, v in store.items()])
        return jsonschema.Draft202012Validator(schema, registry=registry, format_checker=checker)
    except ImportError:
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        return jsonschema.Draft202012Validator(schema, resolver=resolver, format_checker=checker)


doc = json.loads(pathlib.Path(sys.argv[1]).read_text())
problems = []
for schema, part, where in ((statement_schema, doc, "statement"),
                            (slsa_schema, doc.get("predicate"), "predicate")):
    if where == "predicate" and doc.get("predicateType") != "https://slsa.dev/provenance/v1":
        problems.append("predicateType is not https://slsa.dev/provenance/v1")
        continue
    v = validator(schema)
    for e in sorted(v.iter_errors(part), key=lambda e: list(e.absolute_path)):
        path = "/".join(str(p) for p in e.absolute_path)
        problems.append(f"{where}/{path}: {e.message}")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
