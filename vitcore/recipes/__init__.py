"""The built-in recipes: spec files a spec extends with ``"extends": "recipe:NAME"``.

Each is JSON (package data) with its purpose and the reasons for its choices in ``meta``; the
measured results and how to adapt them are in docs/RECIPES.md. Read by vitcore.spec_extends.
"""
