package protocol

// Audience says who sends an API to a broker, and so whether the proxy may
// offer it to its clients.
type Audience uint8

// The audiences. Every API key kmsg knows must be classified explicitly
// (a test walks them): a new key is Unclassified, hence not offered, until
// someone decides.
const (
	// Unclassified keys are never offered.
	Unclassified Audience = iota
	// Clients: producers, consumers, and the admin client and tools
	// (kafka-topics, kafka-configs, kafka-acls, kafka-consumer-groups,
	// kafka-features, kafka-metadata-quorum, ...). Offered.
	Clients
	// Brokers: sent only by brokers and controllers to one another
	// (replication control, the KRaft quorum, broker registration,
	// transaction markers, share-group state). Never offered: through the
	// proxy they would run with the proxy's upstream identity, which may
	// well hold the cluster permission they check.
	Brokers
)

// noCap marks a client API offered at every version both sides know.
const noCap = -1

// AudienceOf classifies an API key and, for client APIs, gives the highest
// version clients may use (-1: no cap beyond the upstream's and kmsg's).
// Some APIs change hands at a version: AddPartitionsToTxn v4+ is the
// brokers' batched verification form (its schema says versions 3 and below
// are the clients'), so it is capped at v3.
func AudienceOf(key int16) (Audience, int16) {
	switch key {
	case 0, 1, 2, 3, // Produce, Fetch, ListOffsets, Metadata
		8, 9, 10, 11, 12, 13, 14, 15, 16, // offsets, coordinators, classic groups
		17, 18, // SaslHandshake, ApiVersions (answered by the proxy)
		19, 20, 21, // CreateTopics, DeleteTopics, DeleteRecords
		22, 23, // InitProducerId, OffsetForLeaderEpoch
		25, 26, 28, // AddOffsetsToTxn, EndTxn, TxnOffsetCommit
		29, 30, 31, // DescribeAcls, CreateAcls, DeleteAcls
		32, 33, 34, 35, // DescribeConfigs, AlterConfigs, AlterReplicaLogDirs, DescribeLogDirs
		36, 37, // SaslAuthenticate (the proxy's), CreatePartitions
		38, 39, 40, 41, // delegation tokens (answered by the proxy)
		42, 43, 44, 45, 46, 47, // DeleteGroups, ElectLeaders, IncrementalAlterConfigs, reassignments, OffsetDelete
		48, 49, // DescribeClientQuotas, AlterClientQuotas
		50, 51, // SCRAM credentials (answered by the proxy)
		55,     // DescribeQuorum (kafka-metadata-quorum describe)
		57,     // UpdateFeatures (kafka-features)
		60, 61, // DescribeCluster, DescribeProducers
		64,     // UnregisterBroker (kafka-cluster unregister, an admin call)
		65, 66, // DescribeTransactions, ListTransactions
		68, 69, // ConsumerGroupHeartbeat, ConsumerGroupDescribe (KIP-848)
		71, 72, // GetTelemetrySubscriptions, PushTelemetry (KIP-714)
		74, 75, // ListConfigResources, DescribeTopicPartitions
		76, 77, 78, 79, // share groups as clients use them (KIP-932)
		80, 81, // AddRaftVoter, RemoveRaftVoter (admin calls, KIP-853)
		88, 89, // StreamsGroupHeartbeat, StreamsGroupDescribe (KIP-1071)
		90, 91, 92, // Describe/Alter/DeleteShareGroupOffsets (admin)
		93, // StreamsGroupTopologyDescriptionUpdate (Streams clients)
		94: // UnregisterController (an admin call)
		return Clients, noCap
	case 24: // AddPartitionsToTxn: v4+ is broker-to-broker verification
		return Clients, 3
	case 4, 5, 6, 7, // LeaderAndIsr, StopReplica, UpdateMetadata, ControlledShutdown
		27,         // WriteTxnMarkers (transaction coordinator to partition leaders)
		52, 53, 54, // Vote, BeginQuorumEpoch, EndQuorumEpoch (KRaft quorum)
		56,     // AlterPartition (leaders to the controller)
		58,     // Envelope (forwarding between brokers and controller)
		59,     // FetchSnapshot (KRaft quorum)
		62, 63, // BrokerRegistration, BrokerHeartbeat
		67,                 // AllocateProducerIds
		70,                 // ControllerRegistration
		73,                 // AssignReplicasToDirs
		82,                 // UpdateRaftVoter
		83, 84, 85, 86, 87: // share-group state: Initialize/Read/Write/Delete, ReadSummary
		return Brokers, 0
	}
	return Unclassified, 0
}

// ClientMaxVersion reports whether clients may be offered key and the
// highest version they may use (-1: no cap of the proxy's own).
func ClientMaxVersion(key int16) (int16, bool) {
	a, hi := AudienceOf(key)
	return hi, a == Clients
}
