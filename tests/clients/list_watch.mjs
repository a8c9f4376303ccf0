// SPDX-License-Identifier: Apache-2.0
/*
 * The second independent client: @kubernetes/client-node (the official
 * JavaScript client, its own HTTP stack, JSON decoding into typed models and
 * its own watch/informer machinery) against sluice-control.
 *
 *   node list_watch.mjs KUBECONFIG NAMESPACE NAME
 *
 * Lists Services (a "pre" Service must already exist), opens a Watch and an
 * informer on NAMESPACE's Services, prints "# ready", then expects the suite
 * to create NAME, change it and delete it with curl: both must report
 * ADDED/MODIFIED/DELETED (add/update/delete). Also writes and reads a
 * ConfigMap through the typed API and checks how a 404 surfaces.
 *
 * Prints one "ok - <check>" / "not ok - <check> # <why>" line per check;
 * tests/integration/client_node.sh checks that every expected line is "ok".
 * Exits on its own after at most 25 s.
 */
import * as k8s from '@kubernetes/client-node';

const [kubeconfig, ns, name] = process.argv.slice(2);
const results = [];

function check(label, cond, why = '') {
	const line = cond ? `ok - ${label}` : `not ok - ${label}${why ? ' # ' + why : ''}`;
	results.push(line);
	console.log(line);
}

function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(cond, ms) {
	const end = Date.now() + ms;
	while (Date.now() < end) {
		if (cond()) return true;
		await sleep(50);
	}
	return cond();
}

const hardStop = setTimeout(() => {
	console.log('not ok - finished-in-time # the script hit its 25 s limit');
	process.exit(1);
}, 25000);

async function main() {
	const kc = new k8s.KubeConfig();
	kc.loadFromFile(kubeconfig);
	check('kubeconfig-plain-http', kc.getCurrentCluster()?.server?.startsWith('http://'));
	const core = kc.makeApiClient(k8s.CoreV1Api);

	// --- list ---------------------------------------------------------------
	let list;
	try {
		list = await core.listNamespacedService({ namespace: ns });
	} catch (e) {
		check('list-services', false, String(e));
		return;
	}
	const pre = list.items.find((s) => s.metadata?.name === 'pre');
	check('list-services', Array.isArray(list.items) && pre !== undefined,
		`items: ${list.items.map((s) => s.metadata?.name)}`);
	check('list-resource-version', /^[0-9]+$/.test(list.metadata?.resourceVersion ?? ''),
		`rv ${list.metadata?.resourceVersion}`);
	check('list-typed-port', pre?.spec?.ports?.[0]?.port === 80 &&
		pre?.spec?.ports?.[0]?.targetPort === 8080, JSON.stringify(pre?.spec?.ports));
	check('list-typed-timestamp', pre?.metadata?.creationTimestamp instanceof Date &&
		!isNaN(pre.metadata.creationTimestamp.getTime()));
	check('list-cluster-ip', /^198\.18\./.test(pre?.spec?.clusterIP ?? ''), pre?.spec?.clusterIP);
	const all = await core.listServiceForAllNamespaces();
	check('list-all-namespaces', all.items.some((s) => s.metadata?.namespace === 'default' &&
		s.metadata?.name === 'kubernetes'));

	// --- watch (the Watch class) -----------------------------------------------
	const seen = [];
	let watchDone = null;
	const watch = new k8s.Watch(kc);
	const ctl = await watch.watch(`/api/v1/namespaces/${ns}/services`,
		{ resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
		(type, obj) => {
			if (obj?.metadata?.name === name) seen.push({ type, obj });
		},
		(err) => { watchDone = err ?? 'closed'; });
	check('watch-connected', watchDone === null, String(watchDone));

	// --- informer -----------------------------------------------------------------
	const inf = { add: [], update: [], delete: [], error: [] };
	const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${ns}/services`,
		() => core.listNamespacedService({ namespace: ns }));
	informer.on('add', (o) => o.metadata?.name === name && inf.add.push(o));
	informer.on('update', (o) => o.metadata?.name === name && inf.update.push(o));
	informer.on('delete', (o) => o.metadata?.name === name && inf.delete.push(o));
	informer.on('error', (e) => inf.error.push(e));
	await informer.start();
	check('informer-started', await waitFor(() => informer.list().some(
		(s) => s.metadata?.name === 'pre'), 5000), 'pre not in the informer cache');

	console.log('# ready');

	// --- the suite now creates, labels and deletes NAME with curl ------------------
	const types = () => seen.map((e) => e.type);
	await waitFor(() => types().includes('DELETED') && inf.delete.length > 0, 15000);
	check('watch-added', types().includes('ADDED'), `saw ${types()}`);
	check('watch-modified', types().includes('MODIFIED'), `saw ${types()}`);
	check('watch-deleted', types().includes('DELETED'), `saw ${types()}`);
	check('watch-order', types().join(',') === 'ADDED,MODIFIED,DELETED', `saw ${types()}`);
	const mod = seen.find((e) => e.type === 'MODIFIED')?.obj;
	check('watch-modified-carries-label', mod?.metadata?.labels?.stage === 'changed',
		JSON.stringify(mod?.metadata?.labels));
	const rvs = seen.map((e) => Number(e.obj?.metadata?.resourceVersion));
	check('watch-rv-increasing', rvs.length === 3 && rvs[0] < rvs[1] && rvs[1] < rvs[2],
		`rvs ${rvs}`);
	check('watch-still-open', watchDone === null, String(watchDone));
	check('informer-add', inf.add.length === 1, `add x${inf.add.length}`);
	check('informer-update', inf.update.length >= 1 &&
		inf.update.at(-1)?.metadata?.labels?.stage === 'changed', `update x${inf.update.length}`);
	check('informer-delete', inf.delete.length === 1, `delete x${inf.delete.length}`);
	check('informer-cache-final', !informer.list().some((s) => s.metadata?.name === name) &&
		informer.list().some((s) => s.metadata?.name === 'pre'));
	check('informer-no-errors', inf.error.length === 0, inf.error.map(String).join('; '));

	// --- typed writes and errors ---------------------------------------------------
	try {
		const cm = await core.createNamespacedConfigMap({
			namespace: ns,
			body: { metadata: { name: 'from-node', labels: { by: 'client-node' } },
				data: { greeting: 'hello' } },
		});
		check('create-configmap', cm.metadata?.uid?.length === 36, JSON.stringify(cm.metadata));
		const back = await core.readNamespacedConfigMap({ namespace: ns, name: 'from-node' });
		check('read-configmap', back.data?.greeting === 'hello');
		back.data.greeting = 'bye';
		const upd = await core.replaceNamespacedConfigMap({ namespace: ns, name: 'from-node',
			body: back });
		check('replace-configmap', upd.data?.greeting === 'bye' &&
			Number(upd.metadata.resourceVersion) > Number(back.metadata.resourceVersion));
		await core.deleteNamespacedConfigMap({ namespace: ns, name: 'from-node' });
		check('delete-configmap', true);
	} catch (e) {
		check('typed-writes', false, String(e).slice(0, 300));
	}
	try {
		await core.readNamespacedService({ namespace: ns, name: 'no-such-service' });
		check('read-missing-404', false, 'no error');
	} catch (e) {
		let body = {};
		try {
			body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
		} catch {
			/* not JSON: the check below reports it */
		}
		check('read-missing-404', e.code === 404 && body?.kind === 'Status' &&
			body?.reason === 'NotFound', `code ${e.code} body ${String(e.body).slice(0, 200)}`);
	}

	await informer.stop();
	ctl.abort();
}

main()
	.catch((e) => check('no-exception', false, String(e?.stack ?? e).split('\n').slice(0, 3).join(' | ')))
	.finally(() => {
		clearTimeout(hardStop);
		console.log(`# ${results.filter((l) => l.startsWith('ok')).length} ok, ` +
			`${results.filter((l) => l.startsWith('not ok')).length} not ok`);
		process.exit(results.some((l) => l.startsWith('not ok')) ? 1 : 0);
	});
