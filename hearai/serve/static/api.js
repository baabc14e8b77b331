// The API's own description (/openapi.json) as a page: every endpoint, what it takes and what it answers.
// Served by hearai itself, so it works offline (FastAPI's Swagger UI needs a CDN).

const $ = (id) => document.getElementById(id);

function schemaName(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.type === "array") return `${schemaName(schema.items)}[]`;
  return schema.type || (schema.anyOf || []).map(schemaName).join(" | ");
}

function fields(operation, spec) {
  const rows = (operation.parameters || []).map((p) =>
    [p.name, `${p.in}${p.required ? ", required" : ""}`, schemaName(p.schema)]);
  const body = operation.requestBody?.content || {};
  for (const [type, content] of Object.entries(body)) {
    const ref = content.schema?.$ref;
    const schema = ref ? spec.components.schemas[ref.split("/").pop()] : content.schema;
    for (const [name, field] of Object.entries(schema?.properties || {})) {
      const required = (schema.required || []).includes(name);
      rows.push([name, `${type}${required ? ", required" : ""}`, field.format === "binary" ? "file" : schemaName(field)]);
    }
  }
  return rows;
}

function section(path, method, operation, spec) {
  const block = document.createElement("section");
  const title = document.createElement("h2");
  title.textContent = `${method.toUpperCase()} ${path}`;
  block.append(title);
  if (operation.summary) block.append(Object.assign(document.createElement("p"), { textContent: operation.summary }));
  if (operation.description) {
    block.append(Object.assign(document.createElement("p"), { textContent: operation.description }));
  }
  const rows = fields(operation, spec);
  if (rows.length) {
    const table = document.createElement("table");
    table.append(Object.assign(document.createElement("caption"), { textContent: "Takes" }));
    const head = table.createTHead().insertRow();
    for (const name of ["name", "where", "type"]) {
      head.append(Object.assign(document.createElement("th"), { scope: "col", textContent: name }));
    }
    const tbody = table.createTBody();
    for (const row of rows) {
      const tr = tbody.insertRow();
      for (const cell of row) tr.insertCell().textContent = cell;
    }
    block.append(table);
  }
  const answers = Object.keys(operation.responses || {}).join(", ");
  block.append(Object.assign(document.createElement("p"), { textContent: `Answers: ${answers}` }));
  return block;
}

async function main() {
  const reply = await fetch("/openapi.json");
  const spec = await reply.json();
  const sections = [];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(methods)) sections.push(section(path, method, operation, spec));
  }
  $("endpoints").replaceChildren(...sections);
  $("api-status").textContent = `${spec.info.title} ${spec.info.version}: ${sections.length} endpoints. ` +
    "The live stream is a WebSocket at /v1/stream (see docs/listening.md).";
}

main().catch((error) => { $("api-status").textContent = `Could not read /openapi.json: ${error.message}`; });
