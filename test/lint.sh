#!/usr/bin/env bash
# Ecosystem checks (part of npm test): tsc --noEmit over sources and tests, yamllint over every YAML file of the
# project, ansible-lint (Debian's package) with its "production" profile over the playbook and the roles.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "lint: tsc --noEmit"
npx tsc -p tsconfig.json --noEmit
echo "lint: yamllint"
yamllint --strict -c .yamllint.yml .
echo "lint: ansible-lint --profile production"
# offline (no galaxy), the project's own config; ANSIBLE_CONFIG so the roles resolve as in a real run
ANSIBLE_CONFIG=ansible/ansible.cfg ansible-lint --offline --profile production -c .ansible-lint.yml ansible/site.yml roles/
echo "lint: clean"
