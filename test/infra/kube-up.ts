// Starts the test API server by hand, for debugging: writes a kubeconfig per
// user next to it and runs until Ctrl-C. Run it through kube/up.sh.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KUBE_USERS, startKube } from './kube.js';

const out = process.argv[2] ?? path.resolve('.asm-wasm', 'kube');
const kube = await startKube();
fs.mkdirSync(out, { recursive: true });
for (const user of KUBE_USERS) {
  fs.writeFileSync(path.join(out, `${user}.kubeconfig`), kube.kubeconfig(user), { mode: 0o600 });
}
console.log(`API server ${kube.server} is up (data, certificates and logs in ${kube.dir}).`);
console.log(`Kubeconfigs: ${KUBE_USERS.map((u) => path.join(out, `${u}.kubeconfig`)).join(', ')}`);
console.log('Press Ctrl-C to stop.');
const shutdown = () => {
  void kube.stop().then(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
setInterval(() => {}, 1 << 30);
