/** Where each service module lives, so scripts and tests load them one way. */
import type { ServiceModule, ServiceName } from '@swiftcart/platform';

/** Loads `subgraphs/<name>/src/service.ts` and returns its `<name>Service` export. */
export async function loadServiceModule(name: ServiceName): Promise<ServiceModule<any, any>> {
  const module = await import(`../subgraphs/${name}/src/service.ts`);
  const service = module[`${name}Service`] as ServiceModule<any, any> | undefined;
  if (!service) throw new Error(`subgraphs/${name}/src/service.ts does not export ${name}Service`);
  return service;
}
