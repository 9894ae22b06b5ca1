#!/usr/bin/env bash
# Ecosystem checks (part of npm test): tsc --noEmit over sources and tests, yamllint over every YAML file of the
# project, ansible-lint (Debian's package) with its "production" profile over the playbook and the roles (their
# molecule-style scenarios included), ansible-doc over the project's modules and plugins (their documentation parses).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "lint: tsc --noEmit"
npx tsc -p tsconfig.json --noEmit
echo "lint: yamllint"
yamllint --strict -c .yamllint.yml .
echo "lint: ansible-lint --profile production"
# offline (no galaxy), the project's own config; ANSIBLE_CONFIG so the roles resolve as in a real run
ANSIBLE_CONFIG=ansible/ansible.cfg ansible-lint --offline --profile production -c .ansible-lint.yml ansible/site.yml roles/
echo "lint: ansible-doc"
# a DOCUMENTATION block that does not parse breaks ansible-doc and, for a callback, the plugin's loading
for lib in roles/*/library; do
  for m in "$lib"/*.py; do ANSIBLE_LIBRARY=$lib ansible-doc -t module "$(basename "$m" .py)" >/dev/null; done
done
for cb in ansible/callback_plugins/*.py; do
  ANSIBLE_CALLBACK_PLUGINS=ansible/callback_plugins ansible-doc -t callback "$(basename "$cb" .py)" >/dev/null
done
echo "lint: clean"
