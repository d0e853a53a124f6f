// Example customer. Copy to infra/customers/<customer>.bicepparam and adjust; then
//   python -m infra.deploy deploy <customer> --location <region> --tenant-id <customer tenant guid>
// The tenant id and the deployer's object id are passed by the deploy tool; only per-customer
// choices live here. Every parameter of main.bicep not set here keeps its default.
using '../main.bicep'

param customerName = 'contoso'

// Scale: Entra provisions at a modest rate; 2 GB instances and a small ceiling are plenty.
param instanceMemoryMB = 2048
param maximumInstanceCount = 40
// 1 always-ready instance removes cold starts from Entra's Test Connection and provisioning cycles
// (billed around the clock); 0 scales to zero.
param alwaysReadyHttpInstances = 0

param storageSkuName = 'Standard_LRS'
param logRetentionInDays = 30

// Graph enrichment: every 15 minutes, match on externalId (= Entra objectId mapping, see docs/entra-setup.md).
param syncSchedule = '0 */15 * * * *'
param graphJoin = 'externalId'
param graphDeprovision = 'flag'

// Alerts (docs/deploy.md#alerts-and-the-workbook): route them to your action group, e.g.
// '/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Insights/actionGroups/<name>'.
// Empty: the rules fire in the portal without notifying anyone.
param alertActionGroupId = ''
// Alert when a token (Entra's or the app's) has not been rotated for this many days (1..730);
// `python -m infra.deploy rotate-token` rotates Entra's, docs/app-guide.md says how for the app's.
param alertTokenMaxAgeDays = 180
