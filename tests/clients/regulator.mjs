// The regulator's part of the day, with fhir-kit-client: read the audit trail of one patient, page by page,
// and the searches of the day. Prints one JSON object for the Python test to check.
import { Client } from 'fhir-kit-client';

const [baseUrl, token, patientId] = process.argv.slice(2);
const client = new Client({ baseUrl, customHeaders: { Authorization: `Bearer ${token}` } });

async function all(searchParams) {
  const events = [];
  let pages = 0;
  let bundle = await client.search({ resourceType: 'AuditEvent', searchParams });
  while (bundle) {
    pages += 1;
    for (const entry of bundle.entry || []) {
      if (entry.resource && entry.resource.resourceType === 'AuditEvent') events.push(entry.resource);
    }
    const next = (bundle.link || []).find((link) => link.relation === 'next');
    bundle = next ? await client.nextPage({ bundle }) : null;
  }
  return { pages, events: events.map((e) => ({
    id: e.id,
    subtype: e.subtype[0].code,
    client: (e.agent[0].who.identifier || {}).value || null,
    outcome: e.outcome,
    entities: (e.entity || []).map((x) => (x.what || {}).reference || x.description || null),
  })) };
}

const patient = await all({ patient: `Patient/${patientId}`, _count: 3 });
const searches = await all({ subtype: 'http://hl7.org/fhir/restful-interaction|search', _count: 50 });
const patientRead = await client.read({ resourceType: 'Patient', id: patientId }).then(
  () => 'read', (error) => (error.response ? error.response.status : String(error)));
console.log(JSON.stringify({ patient, searches, patientRead }));
