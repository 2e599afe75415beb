"""The model explorer's data: model_summary.json's flat rows as a tree, with the transformer blocks
found and linked to their attention statistics and FC-layer pictures."""

from __future__ import annotations

from typing import Any

#: viz/ pictures (from vitcore-viz-attention) that describe every block, by what they show.
BLOCK_PICTURES = {
    "attention": ("attention_entropy", "attention_distance", "attention_histograms", "attention_maps_0"),
    "fc": ("fc_histograms", "fc_heatmaps", "fc_spectra"),
}


def build_tree(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Nest the ``named_modules`` rows (dotted names, "" for the model) into one tree."""
    nodes: dict[str, dict[str, Any]] = {}
    root: dict[str, Any] | None = None
    for row in rows:
        name = str(row.get("name", ""))
        node = {
            "name": name,
            "short": name.rsplit(".", 1)[-1] if name else str(row.get("type", "model")),
            "type": row.get("type"),
            "output_shape": row.get("output_shape"),
            "params": row.get("params"),
            "flops": row.get("flops"),
            "depth": row.get("depth", name.count(".") + 1 if name else 0),
            "block": None,
            "children": [],
        }
        nodes[name] = node
        if not name:
            root = node
            continue
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        while parent not in nodes and parent:
            parent = parent.rsplit(".", 1)[0] if "." in parent else ""
        if parent in nodes:
            nodes[parent]["children"].append(node)
    if root is None:  # rows without the model's own row
        root = {"name": "", "short": "model", "type": "model", "output_shape": None, "params": None,
                "flops": None, "depth": 0, "block": None,
                "children": [n for k, n in nodes.items() if "." not in k]}
    return root


def mark_blocks(root: dict[str, Any], count: int | None) -> list[str]:
    """Number the transformer blocks: the children of the container whose direct children are
    ``count`` modules of one type (torchvision ``encoder.layers``, timm ``blocks``, HF
    ``encoder.layer``). Without a count, the largest such container of two or more wins."""
    best: list[dict[str, Any]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        children = node["children"]
        stack.extend(children)
        if len(children) < 2 or len({c["type"] for c in children}) != 1 or not children[0]["children"]:
            continue
        if count is not None and len(children) != count:
            continue
        if len(children) > len(best):
            best = children
    for index, node in enumerate(best):
        node["block"] = index
    return [node["name"] for node in best]


def model_view(table: dict[str, Any], pictures: list[dict[str, Any]]) -> dict[str, Any]:
    """What the explorer page draws from a model_summary.json table and the run's pictures."""
    geometry = table.get("geometry") if isinstance(table.get("geometry"), dict) else None
    rows = table.get("rows") if isinstance(table.get("rows"), list) else []
    tree = build_tree([r for r in rows if isinstance(r, dict)])
    blocks = mark_blocks(tree, geometry.get("blocks") if geometry else None)
    stems = {p["name"].rsplit(".", 1)[0]: p["url"] for p in pictures if p.get("folder") == "viz"}
    links = {kind: [{"name": stem, "url": stems[stem]} for stem in names if stem in stems]
             for kind, names in BLOCK_PICTURES.items()}
    return {
        "model": table.get("model"),
        "input_shape": table.get("input_shape"),
        "params": table.get("params"),
        "trainable_params": table.get("trainable_params"),
        "flops": table.get("flops"),
        "flops_per_image": table.get("flops_per_image"),
        "geometry": geometry,
        "tree": tree,
        "blocks": blocks,
        "block_pictures": links,
    }
