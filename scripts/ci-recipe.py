#!/usr/bin/env python3
"""Runs the `run:` steps of a GitHub Actions recipe (examples/ci/) as a runner would: each step
in `bash --noprofile --norc -eo pipefail`, from the repository root, with the step's `env:`,
RUNNER_TEMP set to a fresh directory, and the KEY=VALUE lines steps append to $GITHUB_ENV
exported to the steps after them. It reads only the subset of YAML the recipes use (steps
with `name`, `env` of plain scalars, and a `run: |` block), and refuses anything else in a
step rather than guess.

    scripts/ci-recipe.py examples/ci/github-actions.yml
"""
import os
import subprocess
import sys
import tempfile


def indent(line):
    return len(line) - len(line.lstrip(" "))


def steps(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "steps:")
    step_indent = None
    current = None
    i = start + 1
    while i < len(lines):
        line = lines[i]
        text = line.strip()
        if not text or text.startswith("#"):
            i += 1
            continue
        if step_indent is None:
            step_indent = indent(line)
        if indent(line) < step_indent:
            break
        if indent(line) == step_indent:
            if not text.startswith("- "):
                sys.exit(f"{path}:{i + 1}: expected a step (`- name: ...`)")
            if current:
                yield current
            current = {"name": "", "env": {}, "run": None}
            text = text[2:]
        key, _, value = text.partition(":")
        value = value.strip()
        if key == "name":
            current["name"] = value
        elif key == "env":
            env_indent = None
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")
                                      or indent(lines[i]) > indent(line)):
                entry = lines[i].strip()
                if entry and not entry.startswith("#"):
                    name, _, val = entry.partition(":")
                    current["env"][name.strip()] = val.strip().strip("'\"")
                i += 1
            continue
        elif key == "run":
            if value != "|":
                sys.exit(f"{path}:{i + 1}: write run steps as `run: |` blocks")
            body = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or indent(lines[i]) > indent(line)):
                body.append(lines[i])
                i += 1
            block = min(indent(l) for l in body if l.strip())
            current["run"] = "\n".join(l[block:] for l in body) + "\n"
            continue
        else:
            sys.exit(f"{path}:{i + 1}: `{key}` in a step is not supported by this runner")
        i += 1
    if current:
        yield current


def main():
    recipe = sys.argv[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix="ci-recipe-") as temp:
        github_env = os.path.join(temp, "github_env")
        open(github_env, "w").close()
        runner_temp = os.path.join(temp, "runner")
        os.mkdir(runner_temp)
        base = dict(os.environ, RUNNER_TEMP=runner_temp, GITHUB_ENV=github_env,
                    HOME=os.path.join(temp, "home"))
        os.mkdir(base["HOME"])
        for step in steps(recipe):
            if step["run"] is None:
                continue
            env = dict(base)
            for line in open(github_env, encoding="utf-8").read().splitlines():
                name, sep, value = line.partition("=")
                if sep:
                    env[name] = value
            env.update(step["env"])
            print(f"-- {step['name']}", flush=True)
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                                   step["run"]], cwd=root, env=env)
            if done.returncode != 0:
                sys.exit(f"step `{step['name']}` failed with exit code {done.returncode}")
    print(f"{recipe}: every step passed")


if __name__ == "__main__":
    main()
