"""Import rules of the architecture (../shared/design/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "yingyun"


def imports_of(path: Path) -> set[str]:
    """Absolute names of the yingyun modules a file imports."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("yingyun")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("yingyun"):
                out.add(name)
                out |= {f"{name}.{a.name}" for a in node.names}
    return out


def modules_in(pkg: str) -> list[Path]:
    return sorted((SRC / pkg).rglob("*.py"))


def offenders(pkg: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in modules_in(pkg):
        for name in imports_of(path):
            if name.startswith(forbidden):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    return bad


def test_contract_imports_nothing_of_ours():
    bad = []
    for path in modules_in("contract"):
        bad += [f"{path.name} imports {n}" for n in imports_of(path) if not n.startswith("yingyun.contract")]
    assert bad == []


def test_core_imports_only_contract_and_dicomnet():
    # dicomnet imports nothing of ours, so core may take the DIMSE statuses and
    # the implementation UID from it without reaching up.
    bad = []
    for path in modules_in("core"):
        bad += [f"{path.name} imports {n}" for n in imports_of(path)
                if not n.startswith(("yingyun.contract", "yingyun.core", "yingyun.dicomnet"))]
    assert bad == []


# The DICOM network package, one module per layer; each imports only the layers below it.
DICOMNET_LAYERS = {
    "status": (), "slots": (), "uids": (),
    "pdu": ("uids",),
    "acse": ("pdu", "uids"),
    "dimse": ("pdu",),
    "commitment": ("uids",),
    "association": ("acse", "commitment", "dimse", "pdu", "status", "uids"),
    "server": ("association", "slots"),
}


def test_dicomnet_imports_nothing_of_ours():
    bad = []
    for path in modules_in("dicomnet"):
        bad += [f"{path.name} imports {n}" for n in imports_of(path) if not n.startswith("yingyun.dicomnet")]
    assert bad == []


def test_dicomnet_layers_import_only_the_layers_below():
    found = {p.stem for p in modules_in("dicomnet")} - {"__init__"}
    assert found == set(DICOMNET_LAYERS)  # a new module gets its place in the table
    bad = []
    for name, below in DICOMNET_LAYERS.items():
        allowed = {f"yingyun.dicomnet.{m}" for m in below}
        for imported in imports_of(SRC / "dicomnet" / f"{name}.py"):
            module = ".".join(imported.split(".")[:3])  # yingyun.dicomnet.<module>, whatever it names from it
            if module != f"yingyun.dicomnet.{name}" and module not in allowed and imported != "yingyun.dicomnet":
                bad.append(f"dicomnet/{name}.py imports {imported}")
    assert bad == []


def test_the_upper_layer_lives_only_in_dicomnet():
    assert not (SRC / "gateway" / "upperlayer.py").exists()
    assert "yingyun.dicomnet.server" in imports_of(SRC / "gateway" / "receiver.py")


def test_storage_does_not_reach_up():
    assert offenders("storage", ("yingyun.gateway", "yingyun.cloud", "yingyun.archive", "yingyun.web",
                                 "yingyun.serve", "yingyun.cli")) == []


def test_gateway_and_cloud_never_import_each_other():
    assert offenders("gateway", ("yingyun.cloud",)) == []
    if (SRC / "cloud").exists():
        assert offenders("cloud", ("yingyun.gateway",)) == []


def test_the_rule_checker_sees_imports():
    # guard against a checker that finds nothing: serve.py composes the gateway
    assert any(n.startswith("yingyun.gateway") for n in imports_of(SRC / "serve.py"))


# The shared collaborators of a process, and the one module that builds them.
SHARED = ("LocalBlobStore", "S3BlobStore", "InstanceStore", "GroupCommit", "RenderCache")
FACTORY = "runtime.py"
# The composition roots: they open a Runtime; everything else receives what it builds.
ROOTS = ("serve.py", "cli/", "gateway/receiver.py", "demo.py")


def constructions(path: Path) -> list[str]:
    """`Name(...)` calls of the shared collaborators in a file (plain or attribute calls)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in SHARED:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} builds {name}")
    return found


def test_shared_collaborators_are_built_only_by_the_runtime():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel != FACTORY and not rel.startswith("storage/"):  # storage/: the implementations and their factory
            bad += constructions(path)
    assert bad == []


def test_the_construction_checker_sees_constructions():
    built = " ".join(constructions(SRC / FACTORY))
    assert all(name in built for name in ("InstanceStore", "GroupCommit", "RenderCache"))


STORE_CLASSES = ("LocalBlobStore", "S3BlobStore")


def store_class_checks(path: Path) -> list[str]:
    """`isinstance(x, <a blob store class>)` in a file: code that depends on which store it has."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
            names = {n.id if isinstance(n, ast.Name) else getattr(n, "attr", "") for n in ast.walk(node.args[1])}
            found += [f"{path.relative_to(SRC)}:{node.lineno} tests for {c}" for c in STORE_CLASSES if c in names]
    return found


def test_fast_paths_ask_for_the_local_files_protocol_not_a_store_class():
    # storage/blobs.LocalFiles is the optional fast path; any store that has it gets it
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel != FACTORY and not rel.startswith("storage/"):
            bad += store_class_checks(path)
    assert bad == []


def test_only_composition_roots_open_a_runtime():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel != FACTORY and not rel.startswith(ROOTS) and "yingyun.runtime" in imports_of(path):
            bad.append(rel)
    assert bad == []


# The command line, from the top down: main assembles the commands, each noun's module (cli/admin/*)
# and each command module (serve, db, importer) uses the shared ones below it, and nothing imports back up.
CLI_SHARED = ("cli/context.py", "cli/errors.py", "cli/options.py", "cli/output.py")
CLI_COMMANDS = ("yingyun.cli.main", "yingyun.cli.admin", "yingyun.cli.serve", "yingyun.cli.db", "yingyun.cli.importer")


def test_the_command_line_imports_only_downwards():
    bad = []
    for path in modules_in("cli"):
        rel = path.relative_to(SRC).as_posix()
        for name in imports_of(path):
            if name.startswith("yingyun.cli.main") \
                    or (rel in CLI_SHARED and name.startswith(CLI_COMMANDS)) \
                    or (rel.startswith("cli/admin/") and rel != "cli/admin/__init__.py"
                        and name.startswith("yingyun.cli.admin")):
                bad.append(f"{rel} imports {name}")
    assert bad == []


# What each part of the tree may import of ours (docs/architecture.md, "Layers, bottom up"): a part is a
# top-level package, a top-level module, or a domain package under cloud/. Its own modules are always allowed.
LOWER = ("contract", "core", "dicomnet", "storage", "tenancy")
ALLOWED: dict[str, set[str]] = {
    "contract": set(),
    "dicomnet": set(),
    "core": {"contract", "dicomnet"},
    "storage": {"core"},
    "settings": {"core", "storage"},
    # tenancy counts a partner's pending callbacks by their job kind before it removes the partner: the one
    # import of a lower part from a higher one, kept until the kind moves down
    "tenancy": {"contract", "core", "storage", "cloud/callbacks"},
    "archive": {"contract", "core", "dicomnet", "storage", "tenancy"},
    "letterheads": {"core", "storage", "tenancy"},
    "web": {"contract", "core", "storage", "tenancy"},
    # one-time SMS codes per phone and purpose: the patient archive and staff sign-in use them
    "phonecodes": {"contract", "core", "settings", "storage"},
    "gateway": {"archive", "contract", "core", "dicomnet", "settings", "storage", "tenancy", "web", "runtime",
                "metrics"},
    "metrics": {"archive", "core", "dicomnet", "settings", "storage"},
    "cloud": {"cloud/callbacks", "cloud/consultations", "cloud/dicomweb", "cloud/hospital_api", "cloud/ingest",
              "cloud/console", "cloud/organisation", "cloud/patient", "cloud/staff", "cloud/stats", "cloud/reading",
              "cloud/viewer", "cloud/templates", "cloud/readingpage"},
    "cloud/callbacks": {"archive", *LOWER, "settings", "web", "cloud/hospital_api"},
    "cloud/consultations": {"archive", *LOWER, "settings", "web", "cloud/hospital_api", "cloud/staff"},
    "cloud/dicomweb": {"archive", *LOWER, "settings", "web"},
    "cloud/hospital_api": {"archive", *LOWER, "settings", "web", "cloud/callbacks", "cloud/consultations",
                           "cloud/patient"},
    "cloud/ingest": {"archive", *LOWER, "settings", "web"},
    "cloud/patient": {"archive", *LOWER, "settings", "web", "cloud/consultations", "letterheads",
                      "phonecodes"},
    # Staff accounts: a user with a doctor profile is removed with it (consultations keep who took part).
    "cloud/staff": {*LOWER, "settings", "web", "cloud/consultations", "phonecodes"},
    # the organisation's users are cloud/staff's accounts and its doctors cloud/consultations' doctors
    "cloud/organisation": {*LOWER, "web", "cloud/staff", "cloud/consultations"},
    # the console's page reuses the patient pages' language choice and security headers; its data is /api/v1's
    "cloud/console": {*LOWER, "web", "cloud/patient", "cloud/staff"},
    # statistics, the audit trail and discrepancies: read-only views over the archive in the caller's scope
    "cloud/stats": {"archive", *LOWER, "web", "cloud/staff"},
    # report templates and phrases of the reading centres: the caller and its audit trail, the organisation's
    # request-body reader
    "cloud/templates": {"archive", *LOWER, "settings", "web", "cloud/staff", "cloud/organisation"},
    # remote reading: its callers are staff users, a critical finding and a final report reach the partners
    "cloud/reading": {"archive", *LOWER, "settings", "web", "cloud/staff", "cloud/callbacks"},
    # the reading viewer (OHIF's build) is found where the console's npm assets are
    "cloud/viewer": {*LOWER, "web", "cloud/console"},
    # the reading page (the console's look and sign-in, the patient pages' language choice) and the hospital copy
    # of a report (the patient pages' labels and report row, letterheads, the QR link of archive/links)
    "cloud/readingpage": {"archive", *LOWER, "web", "letterheads", "cloud/console", "cloud/patient", "cloud/staff"},
    "runtime": {"archive", "core", "gateway", "settings", "storage", "tenancy"},
    "demo": {"runtime", "settings"},
}
# The composition roots may import anything.
ANYTHING = ("serve", "cli")


def part_of(rel: str) -> str:
    """The part of the tree a file (path relative to src/yingyun) or module name belongs to."""
    bits = rel.split("/")
    if bits[0] == "cloud" and len(bits) > 2:
        return f"cloud/{bits[1]}"
    return bits[0].removesuffix(".py")


def part_imported(name: str) -> str | None:
    """The part of the tree an imported name (yingyun.x.y...) belongs to; None for the package root."""
    bits = name.split(".")[1:]
    if not bits or bits[0] == "__version__":
        return None
    if bits[0] == "cloud" and len(bits) > 1 and (SRC / "cloud" / bits[1]).is_dir():
        return f"cloud/{bits[1]}"
    return bits[0]


def test_every_part_of_the_tree_has_an_import_rule():
    parts = {part_of(p.relative_to(SRC).as_posix()) for p in SRC.rglob("*.py")} - {"__init__"}
    assert parts - set(ALLOWED) - set(ANYTHING) == set()


def test_every_part_imports_only_what_its_rule_allows():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        part = part_of(rel)
        if part in ANYTHING or part == "__init__" or rel.startswith("storage/migrations/"):
            continue
        for name in sorted(imports_of(path)):
            other = part_imported(name)
            if other is not None and other != part and other not in ALLOWED[part]:
                bad.append(f"{rel} imports {name} ({part} may not import {other})")
    assert bad == []


def test_the_rule_table_sees_parts():
    # guard against a checker that finds nothing: the RIS API writes through the archive
    assert "archive" in {part_imported(n) for n in imports_of(SRC / "gateway" / "api.py")}
    assert part_of("cloud/patient/pages/viewer.py") == "cloud/patient" and part_of("runtime.py") == "runtime"
