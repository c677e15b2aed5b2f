"""The repos of tests/fixtures/init, copied the way the tests use them.

seed-repo (a team's repo in the seed's style) is not kept whole in git: its app is fastapi-vite's
(backend/, frontend/) and its Makefile is made from seed-repo/Makefile.in, the team's own
targets, with the line @SEED_RECIPES@ replaced by the seed's stop and force-clean recipes as
tests/seed/Makefile transcribes them. That file's sub-makes carry `-f $(SEED_MAKEFILE)` because
it is not ./Makefile where it runs (see its header); in a team's ./Makefile they are the
seed's own `$(MAKE) TARGET`."""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures", "init")
SEED_MAKEFILE = os.path.join(HERE, "seed", "Makefile")

# The seed's process recipes a seed-style Makefile holds, in this order.
SEED_RECIPES = ("stop-backend", "stop-frontend", "stop", "force-clean-backend",
                "force-clean-frontend", "force-clean")


def seed_recipes(targets=SEED_RECIPES):
    """Each target's rule line and recipe in tests/seed/Makefile, one blank line between."""
    with open(SEED_MAKEFILE, encoding="utf-8") as f:
        lines = f.read().splitlines(True)
    blocks = []
    for target in targets:
        start = lines.index(target + ":\n")
        end = start + 1
        while end < len(lines) and lines[end].startswith("\t"):
            end += 1
        blocks.append("".join(lines[start:end]))
    return "\n".join(blocks).replace("$(MAKE) -f $(SEED_MAKEFILE) ", "$(MAKE) ")


def seed_repo_makefile():
    with open(os.path.join(FIXTURES, "seed-repo", "Makefile.in"), encoding="utf-8") as f:
        template = f.read()
    assert template.count("\n@SEED_RECIPES@\n") == 1, template
    return template.replace("\n@SEED_RECIPES@\n", "\n" + seed_recipes())


def copy_repo(name, dest):
    """Copy the fixture repo `name` into the folder dest (made if missing); returns dest."""
    seed = name == "seed-repo"
    src = os.path.join(FIXTURES, "fastapi-vite" if seed else name)
    if not os.path.isdir(str(dest)):
        os.makedirs(str(dest))
    for entry in os.listdir(src):
        if seed and entry == "Makefile":
            continue
        path = os.path.join(src, entry)
        (shutil.copytree if os.path.isdir(path) else shutil.copy2)(
            path, os.path.join(str(dest), entry))
    if seed:
        with open(os.path.join(str(dest), "Makefile"), "w", encoding="utf-8") as f:
            f.write(seed_repo_makefile())
    return dest
