#!/bin/sh
# Regenerates devices/simboard-<flaw>.yaml from devices/simboard.yaml: the same profile
# with one flaw switched on, so exactly the checks that flaw breaks turn red.
set -eu
cd "$(dirname "$0")"
for flaw in no-forced-change weak-passwords factory-password-kept factory-password-reusable plaintext-only \
    no-cert-validation no-hostname-validation plaintext-fallback no-signature-check \
    no-length-check downgrade-allowed wrong-model-accepted auto-update-off bricks-on-power-loss \
    open-console open-bootloader empty-image-accepted validation-off-after-failures \
    remote-factory-login default-account no-login-throttle plaintext-telemetry telnet-listening debug-port \
    legacy-tls expired-certificate shared-tls-key weak-ssh tls-version-fallback remote-factory-nag sessions-survive-change \
    plain-http-poll telemetry-http-80 https-client-no-verify https-client-tls10 telemetry-leaks-email psk-in-dns md5-password-store config-without-auth \
    config-saved-before-auth broker-anonymous boots-unsigned undeclared-tracker \
    password-over-http reset-keeps-password reset-keeps-token \
    telemetry-before-consent telemetry-after-withdrawal serves-old-policy no-deletion-notice cloud-account-kept telemetry-overshares \
    vulnerable-component sbom-drift expired-security-txt component-not-updateable \
    same-password-all-units password-from-mac; do
  {
    echo "# The simulated board with one flaw switched on: $flaw."
    echo "# Identical to simboard.yaml otherwise (made by make-flaw-profiles.sh); exactly the"
    echo "# checks this flaw breaks must turn red."
    sed -e '1,3d' -e "s/--install-ms 1500\$/--install-ms 1500 --flaw $flaw/" simboard.yaml
  } > "simboard-$flaw.yaml"
  grep -q -- "--flaw $flaw" "simboard-$flaw.yaml"
done

# weak-ssh needs the board's SSH service, which the good board does not run: the profile
# also starts it (--ssh-port) and declares it.
sed -i -e 's/--web-port {{port.web}}/--web-port {{port.web}} --ssh-port {{port.ssh}}/' \
    -e 's/^services:$/services:\n  - name: ssh\n    kind: ssh\n    port: "{{port.ssh}}"\n    throttle: { after: 2, unlock: 15s }/' \
    simboard-weak-ssh.yaml
grep -q -- "--ssh-port" simboard-weak-ssh.yaml
# remote-factory-nag: the reminder shows on telnet and on SSH alike
sed -i -e 's/--web-port {{port.web}}/--web-port {{port.web}} --ssh-port {{port.ssh}}/' \
    -e 's/^services:$/services:\n  - name: ssh\n    kind: ssh\n    port: "{{port.ssh}}"\n    throttle: { after: 2, unlock: 15s }/' \
    simboard-remote-factory-nag.yaml
grep -q -- "--ssh-port" simboard-remote-factory-nag.yaml
# sessions-survive-change: its SSH sessions outlive a change too
sed -i -e 's/--web-port {{port.web}}/--web-port {{port.web}} --ssh-port {{port.ssh}}/' \
    -e 's/^services:$/services:\n  - name: ssh\n    kind: ssh\n    port: "{{port.ssh}}"\n    throttle: { after: 2, unlock: 15s }/' \
    simboard-sessions-survive-change.yaml
grep -q -- "--ssh-port" simboard-sessions-survive-change.yaml

# telemetry-leaks-email: the maker declares its diagnostics uploader's plain HTTP exempt
# ("no personal data"): COM-01 accepts the declaration, the canary shows it untrue
sed -i -e 's/^  namespace: true$/  namespace: true\n  plaintext_exempt: { http: "diagnostics uploader; carries no personal data (maker)" }/' \
    simboard-telemetry-leaks-email.yaml
grep -q -- "plaintext_exempt" simboard-telemetry-leaks-email.yaml

# reset-keeps-password: the flaw is in the reset (the lab's reset command runs the board's)
sed -i -e 's/factory-reset --state {{workdir}}\/simboard.state"$/factory-reset --state {{workdir}}\/simboard.state --flaw reset-keeps-password"/' \
    simboard-reset-keeps-password.yaml
grep -q -- "simboard.state --flaw reset-keeps-password" simboard-reset-keeps-password.yaml

# password-over-http: its maker declares the web login as what it is, plain HTTP
sed -i -e 's/^    tls: true               # HTTPS$/    tls: false              # plain HTTP (the flaw)/' simboard-password-over-http.yaml
grep -q -- "plain HTTP (the flaw)" simboard-password-over-http.yaml

# Not a flaw: the good board with a realistic boot (5 s, 64 KiB of boot log), for
# ci/stress.sh (false FAILs show up around slow, chatty boots).
{
  echo "# The good simulated board with a realistic boot: 5 s and 64 KiB of boot log."
  echo "# Identical to simboard.yaml otherwise (made by make-flaw-profiles.sh); used by"
  echo "# ci/stress.sh, where every check must still pass."
  sed -e '1,3d' -e "s/--install-ms 1500\$/--install-ms 1500 --boot-ms 5000 --noise-kib 64/" \
      -e "s/^  boot_time: 10s\$/  boot_time: 20s/" simboard.yaml
} > simboard-slow-boot.yaml
grep -q -- "--boot-ms 5000" simboard-slow-boot.yaml

# Not flaws: good update clients that report differently (the checks must still pass).
# installing-first prints "installing" before it verifies; silent-refusal says nothing when
# it refuses (and its profile declares no `rejected` message).
for style in installing-first silent-refusal; do
  {
    echo "# The good simulated board whose update client reports differently: $style."
    echo "# Identical to simboard.yaml otherwise (made by make-flaw-profiles.sh); every update"
    echo "# check must still pass."
    sed -e '1,3d' -e "s/--install-ms 1500\$/--install-ms 1500 --update-messages $style/" \
        -e "s/^  installing: 'update: installing'\$/  installing: 'update: (verifying and )?installing'/" simboard.yaml |
      if [ "$style" = silent-refusal ]; then
        # no refusal message to wait for: the declared decision time is all it gets
        grep -v "^  rejected: " | sed "s/^  decision_time: 20s\$/  decision_time: 5s/"
      else cat; fi
  } > "simboard-update-$style.yaml"
  grep -q -- "--update-messages $style" "simboard-update-$style.yaml"
done

# Not a flaw: a good board that reports once an hour. Once the owner's data is planted it
# sends nothing in the canary search's window, so that search has nothing to judge: the
# check must say so (ERROR), never PASS on silence.
{
  echo "# The good simulated board reporting once an hour (telemetry and update checks)."
  echo "# Identical to simboard.yaml otherwise (made by make-flaw-profiles.sh); a search of"
  echo "# what it sends after planting finds nothing because it sends nothing: ERROR."
  sed -e '1,3d' -e "s/--mqtt-interval-ms 500\$/--mqtt-interval-ms 3600000/" \
      -e "s/--update-interval-ms 300 /--update-interval-ms 3600000 /" simboard.yaml
} > simboard-hourly.yaml
grep -q -- "--mqtt-interval-ms 3600000" simboard-hourly.yaml
grep -q -- "--update-interval-ms 3600000" simboard-hourly.yaml
